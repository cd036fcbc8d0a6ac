/**
 * Bundle entry of `portrait.js`: the page API as the global `PortraitSDK` (`PortraitSDK.startPortrait`).
 */
export { startPortrait } from './page.ts';
