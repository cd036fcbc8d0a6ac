/** The privacy core: clipping, rounding, integer noise, modular reduction, accounting and calibration (pure, injected randomness). */
export * from './random.ts';
export * from './clip.ts';
export * from './rotation.ts';
export * from './rounding.ts';
export * from './discrete-gaussian.ts';
export * from './modular.ts';
export * from './rdp.ts';
export * from './distributed.ts';
export * from './calibrate.ts';
export * from './config.ts';
export * from './mechanism.ts';
