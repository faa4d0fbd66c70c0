import { isNativeAccelerationEnabled, Packr } from 'msgpackr';

// Plain msgpack arrays and maps: the tuples need no record extension, and strings decode to
// JS strings, so no decoded value keeps a reference to the batch buffer.
const packr = new Packr({ useRecords: false, moreTypes: false });

/**
 * Encodes a value into a buffer of its own. msgpackr packs into a shared scratch buffer,
 * and posting a view of it would copy the whole scratch buffer, so the bytes are copied
 * out of it first.
 */
export function encode(value: unknown): Uint8Array<ArrayBuffer> {
  return new Uint8Array(packr.pack(value));
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

/** True when msgpackr's native string extractor loaded. */
export function nativeCodecLoaded(): boolean {
  return isNativeAccelerationEnabled;
}
