// An OTLP/HTTP traces receiver for tests: no collector package is available on this machine
// (Debian has none, and npm has no runnable OpenTelemetry Collector), so the test receives
// the exports itself. The protobuf is decoded with the OpenTelemetry JS project's own reader
// (@opentelemetry/otlp-transformer; that version ships no .proto files or generated decoder,
// only its serializer and this reader) and the field numbers of opentelemetry-proto's
// collector/trace/v1 and trace/v1 messages, which that serializer writes.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProtobufReader } from '@opentelemetry/otlp-transformer/build/src/common/protobuf/protobuf-reader.js';

export type AttributeValue = string | boolean | number;

export interface DecodedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  /** 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, AttributeValue>;
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, AttributeValue>;
}

export interface OtlpReceiver {
  url: string;
  spans: DecodedSpan[];
  /** Content types of the export requests received. */
  contentTypes: string[];
  /** Resolves once `predicate` holds for the spans received (checked on every export). */
  waitFor(predicate: (spans: DecodedSpan[]) => boolean): Promise<void>;
  close(): Promise<void>;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Reads the fields of one embedded message, calling `field` for each (a field it does not take is stepped over). */
export function each(bytes: Uint8Array, field: (reader: ProtobufReader, fieldNumber: number, wireType: number) => boolean): void {
  const reader = new ProtobufReader(bytes);
  while (!reader.isAtEnd()) {
    const { fieldNumber, wireType } = reader.readTag();
    if (!field(reader, fieldNumber, wireType)) reader.skip(wireType);
  }
}

/** An opentelemetry-proto AnyValue: string, bool or int. */
export function anyValue(bytes: Uint8Array): AttributeValue {
  let value: AttributeValue = '';
  each(bytes, (reader, fieldNumber, wireType) => {
    if (fieldNumber === 1 && wireType === 2) value = reader.readString();
    else if (fieldNumber === 2 && wireType === 0) value = reader.readVarint() !== 0;
    else if (fieldNumber === 3 && wireType === 0) value = reader.readVarint();
    else return false;
    return true;
  });
  return value;
}

/** An opentelemetry-proto KeyValue, added to `into`. */
export function keyValue(bytes: Uint8Array, into: Record<string, AttributeValue>): void {
  let key = '';
  let value: AttributeValue = '';
  each(bytes, (reader, fieldNumber) => {
    if (fieldNumber === 1) key = reader.readString();
    else if (fieldNumber === 2) value = anyValue(reader.readBytes());
    else return false;
    return true;
  });
  into[key] = value;
}

function span(bytes: Uint8Array, resource: Record<string, AttributeValue>): DecodedSpan {
  const decoded: DecodedSpan = { traceId: '', spanId: '', parentSpanId: '', traceState: '', name: '', kind: 0, attributes: {}, events: [], statusCode: 0, resource };
  each(bytes, (reader, fieldNumber, wireType) => {
    switch (fieldNumber) {
      case 1: decoded.traceId = hex(reader.readBytes()); return true;
      case 2: decoded.spanId = hex(reader.readBytes()); return true;
      case 3: decoded.traceState = reader.readString(); return true;
      case 4: decoded.parentSpanId = hex(reader.readBytes()); return true;
      case 5: decoded.name = reader.readString(); return true;
      case 6: decoded.kind = reader.readVarint(); return true;
      case 9: keyValue(reader.readBytes(), decoded.attributes); return true;
      case 11: {
        const event = { name: '', attributes: {} as Record<string, AttributeValue> };
        each(reader.readBytes(), (inner, number) => {
          if (number === 2) event.name = inner.readString();
          else if (number === 3) keyValue(inner.readBytes(), event.attributes);
          else return false;
          return true;
        });
        decoded.events.push(event);
        return true;
      }
      case 15:
        each(reader.readBytes(), (inner, number, type) => {
          if (number === 3 && type === 0) decoded.statusCode = inner.readVarint();
          else return false;
          return true;
        });
        return true;
      default:
        void wireType;
        return false;
    }
  });
  return decoded;
}

/** Decodes an ExportTraceServiceRequest into its spans. */
export function decodeTraceExport(body: Uint8Array): DecodedSpan[] {
  const spans: DecodedSpan[] = [];
  each(body, (reader, fieldNumber) => {
    if (fieldNumber !== 1) return false;
    const resource: Record<string, AttributeValue> = {};
    const scopeSpans: Uint8Array[] = [];
    each(reader.readBytes(), (inner, number) => {
      if (number === 1) each(inner.readBytes(), (res, resNumber) => (resNumber === 1 ? (keyValue(res.readBytes(), resource), true) : false));
      else if (number === 2) scopeSpans.push(inner.readBytes());
      else return false;
      return true;
    });
    for (const scope of scopeSpans) each(scope, (inner, number) => (number === 2 ? (spans.push(span(inner.readBytes(), resource)), true) : false));
    return true;
  });
  return spans;
}

/** Starts a receiver on a random loopback port; its URL is the traces endpoint. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: DecodedSpan[] = [];
  const contentTypes: string[] = [];
  const waiters: { predicate: (spans: DecodedSpan[]) => boolean; resolve: () => void }[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      contentTypes.push(request.headers['content-type'] ?? '');
      spans.push(...decodeTraceExport(Buffer.concat(chunks)));
      response.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
      response.end();
      for (const waiter of [...waiters]) {
        if (waiter.predicate(spans)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    contentTypes,
    waitFor: (predicate) => (predicate(spans) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ predicate, resolve }))),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
