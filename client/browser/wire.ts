/**
 * Sizes of what the browser client sends, as Socket.IO puts it on the wire: the event name and
 * JSON arguments (binary replaced by placeholders) plus each binary attachment's bytes.
 */

function isBinary(value: unknown): value is ArrayBuffer | ArrayBufferView {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

export function wireBytes(event: string, args: readonly unknown[]): number {
  let binary = 0;
  const json = JSON.stringify([event, ...args.filter((a) => typeof a !== 'function')], (_key, value: unknown) => {
    if (isBinary(value)) {
      binary += value.byteLength;
      return { _placeholder: true, num: 0 };
    }
    return value;
  });
  return new TextEncoder().encode(json).byteLength + binary;
}
