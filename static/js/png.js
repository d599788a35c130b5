// Grayscale PNG decoder. <img> and createImageBitmap reduce 16-bit images to 8 bits, so the
// viewer decodes the file itself to window the stored values. It reads exactly what the site's
// encoder writes (8- or 16-bit grayscale, not interlaced) and refuses anything else, so every
// image, real or synthetic, takes the same path.
"use strict";

(function (global) {
  const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

  function chunkType(bytes, at) {
    return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  }

  // The header fields and the IDAT chunks; ancillary chunks are skipped.
  function readChunks(bytes) {
    if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error("not a PNG file");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let header = null;
    const idat = [];
    for (let at = 8; at + 12 <= bytes.length;) {
      const length = view.getUint32(at);
      const type = chunkType(bytes, at + 4);
      const body = at + 8;
      if (body + length > bytes.length) throw new Error("truncated PNG chunk " + type);
      if (type === "IHDR") {
        header = {
          width: view.getUint32(body), height: view.getUint32(body + 4), bitDepth: bytes[body + 8],
          colorType: bytes[body + 9], compression: bytes[body + 10], filter: bytes[body + 11], interlace: bytes[body + 12],
        };
      } else if (type === "IDAT") {
        idat.push(bytes.subarray(body, body + length));
      } else if (type === "IEND") {
        break;
      }
      at = body + length + 4; // skip the CRC: the zlib stream has its own checksum
    }
    if (!header) throw new Error("PNG without IHDR");
    return { header, idat };
  }

  function checkHeader(h) {
    if (h.colorType !== 0) throw new Error("only grayscale PNGs are supported");
    if (h.bitDepth !== 8 && h.bitDepth !== 16) throw new Error("only 8- and 16-bit PNGs are supported");
    if (h.interlace !== 0 || h.compression !== 0 || h.filter !== 0) throw new Error("unsupported PNG encoding");
    if (!h.width || !h.height) throw new Error("empty PNG");
  }

  // IDAT is one zlib stream, which is what DecompressionStream calls "deflate".
  async function inflate(parts) {
    const stream = new Blob(parts).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function paeth(a, b, c) {
    const p = a + b - c;
    const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  }

  // Undo the per-row filters. The output starts with one zero row so that the first image
  // row's "up" neighbours need no special case; the caller skips it.
  function unfilter(raw, height, rowBytes, bpp) {
    if (raw.length < height * (rowBytes + 1)) throw new Error("truncated PNG image data");
    const out = new Uint8Array((height + 1) * rowBytes);
    for (let y = 0; y < height; y++) {
      const src = y * (rowBytes + 1) + 1;
      const dst = (y + 1) * rowBytes;
      const up = dst - rowBytes;
      const filter = raw[src - 1];
      if (filter === 0) {
        out.set(raw.subarray(src, src + rowBytes), dst);
      } else if (filter === 1) {
        for (let i = 0; i < rowBytes; i++) out[dst + i] = raw[src + i] + (i >= bpp ? out[dst + i - bpp] : 0);
      } else if (filter === 2) {
        for (let i = 0; i < rowBytes; i++) out[dst + i] = raw[src + i] + out[up + i];
      } else if (filter === 3) {
        for (let i = 0; i < rowBytes; i++) out[dst + i] = raw[src + i] + (((i >= bpp ? out[dst + i - bpp] : 0) + out[up + i]) >> 1);
      } else if (filter === 4) {
        for (let i = 0; i < bpp; i++) out[dst + i] = raw[src + i] + out[up + i];
        for (let i = bpp; i < rowBytes; i++) out[dst + i] = raw[src + i] + paeth(out[dst + i - bpp], out[up + i], out[up + i - bpp]);
      } else {
        throw new Error("bad PNG filter type " + filter);
      }
    }
    return out.subarray(rowBytes);
  }

  // Samples as one Uint16Array for both depths, so the viewer's loops see a single array type.
  function toSamples(bytes, count, bitDepth) {
    const samples = new Uint16Array(count);
    if (bitDepth === 8) {
      samples.set(bytes.subarray(0, count));
    } else {
      for (let i = 0, j = 0; i < count; i++, j += 2) samples[i] = (bytes[j] << 8) | bytes[j + 1];
    }
    return samples;
  }

  /** Decode a grayscale PNG into {width, height, bitDepth, pixels: Uint16Array}. */
  async function decodePng(buffer) {
    const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
    const { header, idat } = readChunks(bytes);
    checkHeader(header);
    const bpp = header.bitDepth / 8;
    const rowBytes = header.width * bpp;
    const filtered = unfilter(await inflate(idat), header.height, rowBytes, bpp);
    const pixels = toSamples(filtered, header.width * header.height, header.bitDepth);
    return { width: header.width, height: header.height, bitDepth: header.bitDepth, pixels };
  }

  global.decodeGrayPng = decodePng;
})(window);
