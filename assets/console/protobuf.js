// A tiny protobuf (proto3) encoder/decoder and gRPC-Web framing for the few polyport.v1
// messages the console sends and reads, written by hand so the page needs no library. Field
// numbers follow proto/polyport/v1/*.proto and google/rpc/*.proto.
"use strict";

(function () {
  // [field number, name, type, repeated?]. Types: string, bytes, bool, int32, int64, double,
  // or a message name from this table.
  const MESSAGES = {
    "polyport.v1.CreatePostRequest": [[1, "title", "string"], [2, "body", "string"], [3, "tags", "string", true]],
    "polyport.v1.UpdatePostRequest": [[1, "id", "string"], [2, "title", "string"], [3, "body", "string"], [4, "tags", "string", true], [5, "expected_version", "int64"]],
    "polyport.v1.PublishPostRequest": [[1, "id", "string"], [2, "expected_version", "int64"]],
    "polyport.v1.GetPostRequest": [[1, "id", "string"]],
    "polyport.v1.DeletePostRequest": [[1, "id", "string"], [2, "expected_version", "int64"]],
    "polyport.v1.DeletePostResponse": [[1, "deleted", "bool"]],
    "polyport.v1.ListPostsRequest": [[1, "limit", "int32"], [2, "cursor", "string"], [3, "author_id", "string"], [4, "status", "string"], [5, "tag", "string"]],
    "polyport.v1.ListPostsResponse": [[1, "post", "polyport.v1.Post"], [2, "next_cursor", "string"]],
    "polyport.v1.Post": [
      [1, "id", "string"], [2, "author_id", "string"], [3, "title", "string"], [4, "body", "string"], [5, "status", "string"],
      [6, "tags", "string", true], [7, "published_at", "google.protobuf.Timestamp"], [8, "created_at", "google.protobuf.Timestamp"],
      [9, "updated_at", "google.protobuf.Timestamp"], [10, "version", "int64"],
    ],
    "polyport.v1.SubscribeRequest": [[1, "topics", "string", true], [2, "after_event_id", "int64"]],
    "polyport.v1.Event": [[1, "id", "int64"], [2, "type", "string"], [3, "topic", "string"], [4, "occurred_at", "google.protobuf.Timestamp"], [5, "data", "google.protobuf.Struct"]],
    "google.protobuf.Timestamp": [[1, "seconds", "int64"], [2, "nanos", "int32"]],
    "google.protobuf.Struct": [[1, "fields", "google.protobuf.Struct.FieldsEntry", true]],
    "google.protobuf.Struct.FieldsEntry": [[1, "key", "string"], [2, "value", "google.protobuf.Value"]],
    "google.protobuf.Value": [[1, "null_value", "int32"], [2, "number_value", "double"], [3, "string_value", "string"], [4, "bool_value", "bool"], [5, "struct_value", "google.protobuf.Struct"], [6, "list_value", "google.protobuf.ListValue"]],
    "google.protobuf.ListValue": [[1, "values", "google.protobuf.Value", true]],
    "google.rpc.Status": [[1, "code", "int32"], [2, "message", "string"], [3, "details", "google.protobuf.Any", true]],
    "google.protobuf.Any": [[1, "type_url", "string"], [2, "value", "bytes"]],
    "google.rpc.ErrorInfo": [[1, "reason", "string"], [2, "domain", "string"], [3, "metadata", "google.rpc.ErrorInfo.MetadataEntry", true]],
    "google.rpc.ErrorInfo.MetadataEntry": [[1, "key", "string"], [2, "value", "string"]],
    "google.rpc.BadRequest": [[1, "field_violations", "google.rpc.BadRequest.FieldViolation", true]],
    "google.rpc.BadRequest.FieldViolation": [[1, "field", "string"], [2, "description", "string"]],
    "google.rpc.RetryInfo": [[1, "retry_delay", "google.protobuf.Duration"]],
    "google.protobuf.Duration": [[1, "seconds", "int64"], [2, "nanos", "int32"]],
  };
  const SCALAR = new Set(["string", "bytes", "bool", "int32", "int64", "double"]);

  // ---- writing ----
  function varint(out, v) {
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) {
      out.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    out.push(Number(n));
  }
  function bytesField(out, no, bytes) {
    varint(out, (no << 3) | 2);
    varint(out, bytes.length);
    for (const b of bytes) out.push(b);
  }
  function writeValue(out, no, type, v) {
    switch (type) {
      case "string": bytesField(out, no, new TextEncoder().encode(v)); break;
      case "bytes": bytesField(out, no, v); break;
      case "bool": varint(out, no << 3); varint(out, v ? 1 : 0); break;
      case "int32": case "int64": varint(out, no << 3); varint(out, v); break;
      case "double": {
        varint(out, (no << 3) | 1);
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, v, true);
        for (const x of b) out.push(x);
        break;
      }
      default: bytesField(out, no, encode(type, v));
    }
  }
  /** Encodes `obj` as message `type`. Proto3: a field left undefined or null is not sent. */
  function encode(type, obj) {
    const out = [];
    for (const [no, name, ftype, repeated] of MESSAGES[type]) {
      const v = obj[name];
      if (v === undefined || v === null) continue;
      if (repeated) for (const item of v) writeValue(out, no, ftype, item);
      else writeValue(out, no, ftype, v);
    }
    return Uint8Array.from(out);
  }

  // ---- reading ----
  function readVarint(buf, pos) {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos.i >= buf.length) throw new Error("truncated varint");
      const b = buf[pos.i++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  }
  function readScalar(type, wire, buf, pos) {
    if (wire === 0) {
      const n = readVarint(buf, pos);
      if (type === "bool") return n !== 0n;
      if (type === "int32") return Number(BigInt.asIntN(32, n));
      return Number(BigInt.asIntN(64, n));
    }
    if (wire === 1) {
      const v = new DataView(buf.buffer, buf.byteOffset + pos.i, 8).getFloat64(0, true);
      pos.i += 8;
      return v;
    }
    if (wire === 5) {
      pos.i += 4;
      return null;
    }
    const len = Number(readVarint(buf, pos));
    const slice = buf.subarray(pos.i, pos.i + len);
    pos.i += len;
    if (type === "string") return new TextDecoder().decode(slice);
    if (type === "bytes") return slice;
    return decode(type, slice);
  }
  /** Decodes message `type`; well-known types come out as JSON (Timestamp as RFC 3339). */
  function decode(type, buf) {
    const fields = MESSAGES[type] || [];
    const obj = {};
    for (const [, name, , repeated] of fields) if (repeated) obj[name] = [];
    const pos = { i: 0 };
    while (pos.i < buf.length) {
      const key = Number(readVarint(buf, pos));
      const no = key >> 3;
      const wire = key & 7;
      const field = fields.find((f) => f[0] === no);
      const v = readScalar(field ? field[2] : "bytes", wire, buf, pos);
      if (!field) continue;
      if (field[3]) obj[field[1]].push(v);
      else obj[field[1]] = v;
    }
    return wellKnown(type, obj);
  }
  function wellKnown(type, obj) {
    switch (type) {
      case "google.protobuf.Timestamp":
        return new Date((obj.seconds || 0) * 1000 + Math.floor((obj.nanos || 0) / 1e6)).toISOString();
      case "google.protobuf.Struct":
        return Object.fromEntries(obj.fields.map((e) => [e.key, e.value === undefined ? null : e.value]));
      case "google.protobuf.ListValue":
        return obj.values;
      case "google.protobuf.Value":
        if ("struct_value" in obj) return obj.struct_value;
        if ("list_value" in obj) return obj.list_value;
        if ("string_value" in obj) return obj.string_value;
        if ("number_value" in obj) return obj.number_value;
        if ("bool_value" in obj) return obj.bool_value;
        return null;
      case "google.protobuf.Any": {
        const name = (obj.type_url || "").split("/").pop();
        return MESSAGES[name] ? { "@type": obj.type_url, ...decode(name, obj.value || new Uint8Array()) } : { "@type": obj.type_url };
      }
      default:
        return obj;
    }
  }

  // ---- gRPC-Web framing ----
  /** One length-prefixed data frame (flag 0x00) holding `message`. */
  function frame(message) {
    const out = new Uint8Array(5 + message.length);
    new DataView(out.buffer).setUint32(1, message.length);
    out.set(message, 5);
    return out;
  }
  /** Splits complete frames off `buf`: {frames: [{trailers, bytes, raw}], rest}. */
  function unframe(buf) {
    const frames = [];
    let i = 0;
    while (buf.length - i >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset + i + 1, 4).getUint32(0);
      if (buf.length - i - 5 < len) break;
      frames.push({ trailers: (buf[i] & 0x80) !== 0, bytes: buf.subarray(i + 5, i + 5 + len), raw: buf.subarray(i, i + 5 + len) });
      i += 5 + len;
    }
    return { frames, rest: buf.subarray(i) };
  }
  /** A trailers frame's `name: value` lines as an object. */
  function trailers(bytes) {
    const out = {};
    for (const line of new TextDecoder().decode(bytes).split("\r\n")) {
      const at = line.indexOf(":");
      if (at > 0) out[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
    }
    return out;
  }
  /** `grpc-status-details-bin` (unpadded base64 of google.rpc.Status), decoded. */
  function statusDetails(b64) {
    if (!b64) return null;
    const std = b64.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(std + "=".repeat((4 - (std.length % 4)) % 4));
    return decode("google.rpc.Status", Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  }
  function hex(bytes) {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const row = Array.from(bytes.subarray(i, i + 16));
      const h = row.map((b) => b.toString(16).padStart(2, "0")).join(" ");
      const a = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
      lines.push(`${i.toString(16).padStart(6, "0")}  ${h.padEnd(48)}  ${a}`);
    }
    return lines.join("\n");
  }

  window.PolyportProto = { encode, decode, frame, unframe, trailers, statusDetails, hex };
})();
