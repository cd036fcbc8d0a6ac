/**
 * Where a simulated client vanishes: after checking in, on receiving the config, after training,
 * mid-upload, or instead of sending its message of a SecAgg+ stage. Apart from client.ts so the
 * CLI can name the stages in its help without loading the client (Socket.IO, tfjs).
 */
export const DROP_STAGES = ['checkin', 'config', 'training', 'upload', 'advertise-keys', 'share-keys', 'masked-input', 'unmask'] as const;
export type DropStage = (typeof DROP_STAGES)[number];
export const SECAGG_DROP_STAGES = ['advertise-keys', 'share-keys', 'masked-input', 'unmask'] as const satisfies readonly DropStage[];
