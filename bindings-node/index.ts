// The c2d package: Azure IoT Hub cloud-to-device messaging for Node.js on c2d's Rust engine.
//
// This file is the package's source; `npm run build:types` compiles it to index.js and
// index.d.ts, which are committed (installing the package needs no TypeScript). The native
// addon (native.js, built from ./src by the install script) does the work; this layer gives
// it JavaScript's shapes: error classes, enums, Dates, async iterators and an EventEmitter.

import { EventEmitter } from 'node:events';

import * as native from './native';

// ---------------------------------------------------------------------------------------
// Enums

/** How a device reaches its hub. */
export const Transport = {
  /** MQTT 3.1.1 over TLS (8883). Complete only: MQTT cannot reject or abandon. */
  Mqtt: 'mqtt',
  /** MQTT over a WebSocket (443). */
  MqttWs: 'mqtt_ws',
  /** AMQP 1.0 over TLS (5671). */
  Amqp: 'amqp',
  /** AMQP over a WebSocket (443). */
  AmqpWs: 'amqp_ws',
  /** HTTPS polling (443): every settlement; messages arrive when the client polls (at
   * connect, then every `pollIntervalMs`, 25 minutes by default). */
  Https: 'https',
} as const;
/** How a device reaches its hub. */
export type Transport = (typeof Transport)[keyof typeof Transport];

/** How a back end reaches its hub. */
export const ServiceTransport = {
  /** AMQP 1.0 over TLS (5671). */
  Amqp: 'amqp',
  /** AMQP over a WebSocket (443). */
  AmqpWs: 'amqp_ws',
} as const;
/** How a back end reaches its hub. */
export type ServiceTransport = (typeof ServiceTransport)[keyof typeof ServiceTransport];

/** Which outcomes of a message produce a feedback record. */
export const Ack = {
  /** None. */
  None: 'none',
  /** Success. */
  Positive: 'positive',
  /** Expired, DeliveryCountExceeded, Rejected, Purged. */
  Negative: 'negative',
  /** All of them. */
  Full: 'full',
} as const;
/** Which outcomes of a message produce a feedback record. */
export type Ack = (typeof Ack)[keyof typeof Ack];

/** A message's outcome. */
export const FeedbackStatus = {
  /** The device completed it. */
  Success: 'Success',
  /** Its time to live passed first. */
  Expired: 'Expired',
  /** It was delivered as many times as the hub allows. */
  DeliveryCountExceeded: 'DeliveryCountExceeded',
  /** The device rejected it. */
  Rejected: 'Rejected',
  /** The device's queue was purged. */
  Purged: 'Purged',
} as const;
/** A message's outcome. */
export type FeedbackStatus = (typeof FeedbackStatus)[keyof typeof FeedbackStatus];

/** Where a client's connection stands. */
export const ConnectionState = {
  /** Connected. */
  Connected: 'connected',
  /** The connection dropped; reconnecting as the retry policy says. */
  Reconnecting: 'reconnecting',
  /** Closed, or given up on for good (the status says why). */
  Disconnected: 'disconnected',
} as const;
/** Where a client's connection stands. */
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

function oneOf<T extends string>(values: Record<string, T>, value: unknown, what: string): T {
  const allowed = Object.values(values);
  if (typeof value === 'string' && (allowed as string[]).includes(value)) return value as T;
  throw new InvalidArgumentError(`${what} must be one of ${allowed.join(', ')}, not ${String(value)}`);
}

// ---------------------------------------------------------------------------------------
// Errors

/** The `code` of every c2d error. */
export type ErrorCode =
  | 'C2D_INVALID_ARGUMENT'
  | 'C2D_UNAUTHORIZED'
  | 'C2D_DEVICE_NOT_FOUND'
  | 'C2D_QUEUE_FULL'
  | 'C2D_MESSAGE_TOO_LARGE'
  | 'C2D_THROTTLED'
  | 'C2D_UNAVAILABLE'
  | 'C2D_TIMEOUT'
  | 'C2D_MESSAGE_LOCK_LOST'
  | 'C2D_ALREADY_SETTLED'
  | 'C2D_UNSUPPORTED'
  | 'C2D_CLOSED'
  | 'C2D_PROTOCOL'
  | 'C2D_INTERNAL'
  | 'C2D_QUOTA_EXCEEDED';

/** The base class of every error c2d raises; `err.code` says its kind. */
export class C2DError extends Error {
  /** The kind of error, stable across versions. */
  readonly code: ErrorCode;
  /** Whether retrying the same operation later may succeed. */
  get transient(): boolean {
    return native.isTransientCode(this.code);
  }
  constructor(message: string, code: ErrorCode = 'C2D_INTERNAL') {
    super(message);
    this.code = code;
  }
  static {
    Object.defineProperty(this.prototype, 'name', { value: 'C2DError', writable: true, configurable: true });
  }
}

function errorClass<C extends ErrorCode>(name: string, code: C) {
  const cls = class extends C2DError {
    declare readonly code: C;
    constructor(message: string) {
      super(message, code);
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
  return cls;
}

/** A malformed connection string, option or message: fix the call. */
export class InvalidArgumentError extends errorClass('InvalidArgumentError', 'C2D_INVALID_ARGUMENT') {}
/** The hub refused the credentials (a wrong key, an expired token, a policy without the right). */
export class UnauthorizedError extends errorClass('UnauthorizedError', 'C2D_UNAUTHORIZED') {}
/** No such device in the hub's registry. */
export class DeviceNotFoundError extends errorClass('DeviceNotFoundError', 'C2D_DEVICE_NOT_FOUND') {}
/** The device's queue holds as many messages as the hub allows. */
export class QueueFullError extends errorClass('QueueFullError', 'C2D_QUEUE_FULL') {}
/** The message is larger than the hub accepts. */
export class MessageTooLargeError extends errorClass('MessageTooLargeError', 'C2D_MESSAGE_TOO_LARGE') {}
/** The hub is throttling: retry later. */
export class ThrottledError extends errorClass('ThrottledError', 'C2D_THROTTLED') {}
/** The hub cannot be reached, or dropped the connection. */
export class UnavailableError extends errorClass('UnavailableError', 'C2D_UNAVAILABLE') {}
/** The operation did not finish in time. */
export class OperationTimeoutError extends errorClass('OperationTimeoutError', 'C2D_TIMEOUT') {}
/** The message's lock ended (or its connection closed) before it was settled; the hub
 * delivers it again. */
export class MessageLockLostError extends errorClass('MessageLockLostError', 'C2D_MESSAGE_LOCK_LOST') {}
/** The delivery was already settled. */
export class AlreadySettledError extends errorClass('AlreadySettledError', 'C2D_ALREADY_SETTLED') {}
/** The transport cannot do that (MQTT cannot reject or abandon). */
export class UnsupportedError extends errorClass('UnsupportedError', 'C2D_UNSUPPORTED') {}
/** The client was closed. */
export class ClosedError extends errorClass('ClosedError', 'C2D_CLOSED') {}
/** The hub answered something the protocol does not allow. */
export class ProtocolError extends errorClass('ProtocolError', 'C2D_PROTOCOL') {}
/** A bug of c2d: please report it. */
export class InternalError extends errorClass('InternalError', 'C2D_INTERNAL') {}
/** The hub's daily message quota is used up (IoT Hub 403002): retrying within the day does
 * not help; wait for the quota to reset (00:00 UTC) or add units. */
export class QuotaExceededError extends errorClass('QuotaExceededError', 'C2D_QUOTA_EXCEEDED') {}

const errorClasses: Record<ErrorCode, new (message: string) => C2DError> = {
  C2D_INVALID_ARGUMENT: InvalidArgumentError,
  C2D_UNAUTHORIZED: UnauthorizedError,
  C2D_DEVICE_NOT_FOUND: DeviceNotFoundError,
  C2D_QUEUE_FULL: QueueFullError,
  C2D_MESSAGE_TOO_LARGE: MessageTooLargeError,
  C2D_THROTTLED: ThrottledError,
  C2D_UNAVAILABLE: UnavailableError,
  C2D_TIMEOUT: OperationTimeoutError,
  C2D_MESSAGE_LOCK_LOST: MessageLockLostError,
  C2D_ALREADY_SETTLED: AlreadySettledError,
  C2D_UNSUPPORTED: UnsupportedError,
  C2D_CLOSED: ClosedError,
  C2D_PROTOCOL: ProtocolError,
  C2D_INTERNAL: InternalError,
  C2D_QUOTA_EXCEEDED: QuotaExceededError,
};

/** The error the engine's error of `code` becomes. */
function makeError(code: string, message: string): C2DError {
  const cls = errorClasses[code as ErrorCode];
  return cls ? new cls(message) : new InternalError(`${message} (unknown error code ${code})`);
}
native.setErrorFactory(makeError);

function isClosed(e: unknown): boolean {
  return e instanceof ClosedError;
}

// A receive that finds its message at once (no I/O between them) lets the event loop run
// after this many in a row: a drain of buffered messages resolves promises only, which would
// otherwise keep timers and sockets waiting for as long as messages keep coming.
const AT_ONCE = 16;

/** A turn of the event loop. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// ---------------------------------------------------------------------------------------
// Cancellation

/** What every call that waits takes. */
export interface AbortOptions {
  /** Aborting it rejects the call at once with the signal's reason (an `AbortError`
   * `DOMException` unless `abort(reason)` gave one) and stops the call's work on the
   * engine; the client stays usable. An aborted receive takes no message (one arriving as it
   * is aborted goes to the next receive), an aborted `outcome()` leaves the record to a later
   * call; an aborted send may still have reached the hub, as one that times out. A signal
   * aborted already rejects the call before any I/O. */
  signal?: AbortSignal;
}

/** The native side of `signal` for a call about to start; throws the signal's reason when it
 * is aborted already, before the call does anything. */
function nativeAbort(signal: AbortSignal | undefined): native.Abort | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
  signal.throwIfAborted();
  return new native.Abort();
}

/** `work`, or, as soon as `signal` aborts, a rejection with its reason while `abort` (the
 * native side given to the call) drops the work; what the work still yields afterwards goes
 * to `giveBack` (a received message, handed back to its client). */
function untilAborted<T>(
  signal: AbortSignal | undefined,
  abort: native.Abort | undefined,
  work: Promise<T>,
  giveBack?: (value: T) => void,
): Promise<T> {
  if (signal === undefined || abort === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      abort.abort();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) giveBack?.(value);
        else resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

// ---------------------------------------------------------------------------------------
// Retry policies

/** A retry policy of your own: the milliseconds to wait before retry number `attempt` (1 for
 * the first) after the transient `error`, or `null` to give up. */
export type RetryFunction = (attempt: number, error: C2DError) => number | null | undefined;

/** How connecting and operations are retried after a transient error (errors that retrying
 * cannot fix are never retried). */
export class RetryPolicy {
  /** @internal */
  readonly native: native.RetryPolicy;
  private constructor(policy: native.RetryPolicy) {
    this.native = policy;
  }
  /** Never retry. */
  static none(): RetryPolicy {
    return new RetryPolicy(native.RetryPolicy.none());
  }
  /** The same wait every time; at most `maxRetries` retries (absent: no limit). */
  static fixed(intervalMs: number, options: { maxRetries?: number } = {}): RetryPolicy {
    return new RetryPolicy(native.RetryPolicy.fixed(intervalMs, options.maxRetries));
  }
  /** Waits that double from `initialMs` (100) up to `maxMs` (10 000), each shortened by a
   * random part of up to `jitter` (0.25) of itself; at most `maxRetries` retries (absent: no
   * limit). The default policy. */
  static exponentialBackoff(
    options: { initialMs?: number; maxMs?: number; jitter?: number; maxRetries?: number } = {},
  ): RetryPolicy {
    const { initialMs = 100, maxMs = 10_000, jitter = 0.25, maxRetries } = options;
    return new RetryPolicy(native.RetryPolicy.exponentialBackoff(initialMs, maxMs, jitter, maxRetries));
  }
  /** A policy of your own (see {@link RetryFunction}). It runs on the JavaScript thread while
   * the engine waits for its answer: keep it quick. If it throws, or answers something that
   * is not a number, retrying stops (a thrown error is reported as a process warning). */
  static custom(decide: RetryFunction): RetryPolicy {
    if (typeof decide !== 'function') throw new TypeError('RetryPolicy.custom takes a function');
    return new RetryPolicy(
      native.RetryPolicy.custom((attempt: number, code: string, message: string) => {
        try {
          const wait = decide(attempt, makeError(code, message));
          return typeof wait === 'number' ? wait : null;
        } catch (e) {
          process.emitWarning(`c2d: the retry function threw, so retrying stops: ${String(e)}`);
          return null;
        }
      }),
    );
  }
  /** How it was made. */
  toString(): string {
    return this.native.toString();
  }
}

function nativeRetry(retry: RetryPolicy | RetryFunction | undefined): native.RetryPolicy | undefined {
  if (retry === undefined) return undefined;
  if (retry instanceof RetryPolicy) return retry.native;
  if (typeof retry === 'function') return RetryPolicy.custom(retry).native;
  throw new TypeError('retry must be a RetryPolicy or a function (attempt, error) => ms | null');
}

// ---------------------------------------------------------------------------------------
// Messages

/** What a message to send carries besides its body. */
export interface MessageOptions {
  /** Which outcomes produce a feedback record (`Ack.None` when absent). */
  ack?: Ack;
  /** The time to live in milliseconds (the hub's default, 1 h, when absent). */
  ttlMs?: number;
  /** The message id (generated when absent). */
  messageId?: string;
  /** The correlation id. */
  correlationId?: string;
  /** The content type. */
  contentType?: string;
  /** The content encoding. */
  contentEncoding?: string;
  /** Application properties: text names with text values. */
  properties?: Record<string, string>;
}

/** A C2D message to send. A string body is sent as UTF-8. */
export class Message {
  /** The body. */
  body: Buffer;
  /** Which outcomes produce a feedback record. */
  ack: Ack;
  /** The time to live in milliseconds (the hub's default when absent). */
  ttlMs?: number;
  /** The message id (generated when absent). */
  messageId?: string;
  /** The correlation id. */
  correlationId?: string;
  /** The content type. */
  contentType?: string;
  /** The content encoding. */
  contentEncoding?: string;
  /** Application properties. */
  properties: Record<string, string>;

  constructor(body: Buffer | Uint8Array | string, options: MessageOptions = {}) {
    if (typeof body === 'string') this.body = Buffer.from(body, 'utf8');
    else if (body instanceof Uint8Array) this.body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    else throw new TypeError('a message body is a Buffer, a Uint8Array or a string');
    this.ack = options.ack ?? Ack.None;
    this.ttlMs = options.ttlMs;
    this.messageId = options.messageId;
    this.correlationId = options.correlationId;
    this.contentType = options.contentType;
    this.contentEncoding = options.contentEncoding;
    this.properties = { ...(options.properties ?? {}) };
  }

  /** @internal */
  toNative(): native.OutgoingMessage {
    const properties: string[] = [];
    for (const [name, value] of Object.entries(this.properties)) {
      if (typeof value !== 'string') throw new TypeError(`message property ${name} is not a string`);
      properties.push(name, value);
    }
    return {
      body: this.body,
      ack: oneOf(Ack, this.ack, 'ack'),
      ttlMs: this.ttlMs,
      messageId: this.messageId,
      correlationId: this.correlationId,
      contentType: this.contentType,
      contentEncoding: this.contentEncoding,
      properties,
    };
  }
}

/** A message a device received: the addon's own class, whose getters give the body, the
 * system properties (`null` when absent; times as `Date`s, the sequence number a `bigint`)
 * and the application properties. What it holds stays readable after it is settled; it is
 * settled once, with `complete()`, `reject()` or `abandon()` (a second settle rejects with
 * `AlreadySettledError`), and nothing is acknowledged to the hub before that. Over MQTT,
 * `reject()` and `abandon()` reject with `UnsupportedError` and change nothing: the message
 * is still yours to complete. Over MQTT and AMQP a settle is a frame the hub does not answer:
 * its promise is resolved once the frame is queued (a connection lost before it is written
 * means the hub delivers the message again); over HTTPS it waits for the hub's answer. */
export interface ReceivedMessage extends native.ReceivedMessage {
  /** Done: the hub removes the message (`Success` feedback if asked). */
  complete(options?: AbortOptions): Promise<void>;
  /** Dead-letters it (`Rejected` feedback). AMQP and HTTPS. */
  reject(options?: AbortOptions): Promise<void>;
  /** Puts it back for another delivery (delivery count + 1). AMQP and HTTPS. */
  abandon(options?: AbortOptions): Promise<void>;
}
/** A message a device received (see the interface). */
export const ReceivedMessage = native.ReceivedMessage as unknown as abstract new () => ReceivedMessage;

// the settles, on the addon's class: its `settle(how, abort)` with an AbortSignal
for (const how of ['complete', 'reject', 'abandon'] as const) {
  Object.defineProperty(native.ReceivedMessage.prototype, how, {
    value(this: native.ReceivedMessage, options: AbortOptions = {}): Promise<void> {
      let abort: native.Abort | undefined;
      try {
        abort = nativeAbort(options.signal);
      } catch (e) {
        return Promise.reject(e);
      }
      return untilAborted(options.signal, abort, this.settle(how, abort));
    },
    writable: true,
    configurable: true,
  });
}

// ---------------------------------------------------------------------------------------
// Connection status

/** A client's connection status: its state, and why when it is disconnected. */
export interface ConnectionStatus {
  /** The state. */
  state: ConnectionState;
  /** Why, when disconnected. */
  reason: string | null;
}

function connectionStatus(s: native.Status): ConnectionStatus {
  return { state: s.state as ConnectionState, reason: s.reason ?? null };
}

async function* statusIterator(changes: native.StatusChanges): AsyncGenerator<ConnectionStatus, void, undefined> {
  for (;;) {
    const next = await changes.next();
    if (next === null || next === undefined) return;
    yield connectionStatus(next);
  }
}

// ---------------------------------------------------------------------------------------
// Options

/** What both clients' `connect` take; `signal` abandons connecting. */
export interface ClientOptions extends AbortOptions {
  /** PEM of the CA certificates to trust instead of the system's. */
  trustedCa?: string | Buffer;
  /** A file of such PEM. */
  trustedCaFile?: string;
  /** The port of the transport chosen. */
  port?: number;
  /** The HTTPS (and WebSocket) port. */
  httpsPort?: number;
  /** How connecting and operations are retried (exponential backoff when absent). */
  retry?: RetryPolicy | RetryFunction;
  /** How long one operation may take, in milliseconds. */
  timeoutMs?: number;
  /** How long each SAS token the client makes is valid, in milliseconds. */
  sasTokenTtlMs?: number;
  /** An HTTP proxy to reach the hub through with `CONNECT`,
   * `http://[user:password@]host:port`. It carries the WebSocket transports and HTTPS (a
   * device over plain MQTT or AMQP, or a service over plain AMQP, with a proxy is an
   * `InvalidArgumentError`). The environment is not read: pass
   * `proxy: process.env.HTTPS_PROXY` to use its proxy. */
  proxy?: string;
}

/** A device client's options. */
export interface DeviceClientOptions extends ClientOptions {
  /** The transport (`Transport.Mqtt` when absent). */
  transport?: Transport;
  /** The MQTT port. */
  mqttPort?: number;
  /** The AMQP port. */
  amqpPort?: number;
  /** How many messages may be delivered and not yet settled. */
  inFlight?: number;
  /** How long an HTTPS client waits between polls once the queue is empty, in milliseconds
   * (25 minutes, IoT Hub's guidance, when absent; each poll drains the queue; poll more
   * often only in development). */
  pollIntervalMs?: number;
  /** The device's X.509 certificate (PEM string or Buffer), for a connection string with
   * `x509=true`, as with `azure-iot-device`'s `setOptions({ cert, key })`. */
  cert?: string | Buffer;
  /** A PEM file of the certificate. */
  certFile?: string;
  /** The certificate's private key (PEM string or Buffer). */
  key?: string | Buffer;
  /** A PEM file of the key. */
  keyFile?: string;
  /** Hand each message over once: the ids of the messages the application completed or
   * rejected are remembered (the last 10 000, for 48 hours), and one that comes again (its
   * acknowledgement was lost, its connection dropped) is settled the same way without being
   * handed over, counted in `duplicatesSuppressed`. Messages without a message id are always
   * handed over. */
  suppressDuplicates?: boolean;
  /** Keep those ids in this file too (implies `suppressDuplicates`), written before each
   * settlement is sent: a process killed after handling a message and before its
   * acknowledgement reached the hub does not see it again after a restart. */
  duplicatesFile?: string;
}

/** A service client's options. */
export interface ServiceClientOptions extends ClientOptions {
  /** The transport (`ServiceTransport.Amqp` when absent). */
  transport?: ServiceTransport;
  /** The AMQP port. */
  amqpPort?: number;
}

function checkString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
  return value;
}

/** The options every client's `connect` checks the same way, without `retry`. */
function clientOptions<O extends ClientOptions>(options: O): Omit<O, 'retry' | 'signal'> {
  const { retry: _retry, signal: _signal, ...rest } = options;
  checkPem(options.trustedCa, options.trustedCaFile, 'trustedCa');
  if (options.proxy !== undefined) checkString(options.proxy, 'proxy');
  return rest;
}

/** Checks the types of a PEM option (`name`: a string or a Buffer) and its file form. */
function checkPem(pem: unknown, file: unknown, name: string): void {
  if (pem !== undefined && typeof pem !== 'string' && !Buffer.isBuffer(pem)) {
    throw new TypeError(`${name} must be PEM text (a string) or a Buffer`);
  }
  if (file !== undefined) checkString(file, `${name}File`);
}

// ---------------------------------------------------------------------------------------
// The device client

/** The events of a {@link DeviceClient}. */
export interface DeviceClientEvents {
  /** A message arrived; settle it with `complete()`, `reject()` or `abandon()`. */
  message: [message: ReceivedMessage];
  /** The connection's status changed. */
  status: [status: ConnectionStatus];
  /** Receiving ended with an error for good (credentials refused, retries exhausted). */
  error: [error: C2DError];
}

/**
 * A device's connection to its hub. Receive with `await client.receive()`, with
 * `for await (const msg of client.messages())`, or, as with `azure-iot-device`, with
 * `client.on('message', msg => …)`; settle each message once. The client reconnects and
 * subscribes again by itself as its retry policy says.
 */
export class DeviceClient extends EventEmitter<DeviceClientEvents> {
  readonly #native: native.DeviceClient;
  #closed = false;
  #atOnce = 0;
  #emittingMessages = false;
  #emittingStatus = false;

  /** @internal */
  private constructor(client: native.DeviceClient) {
    super();
    this.#native = client;
    // receiving starts with the first 'message' listener, as with azure-iot-device
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message' && !this.#emittingMessages) {
        this.#emittingMessages = true;
        queueMicrotask(() => void this.#emitMessages());
      } else if (event === 'status' && !this.#emittingStatus) {
        this.#emittingStatus = true;
        void this.#emitStatus(this.#native.statusChanges());
      }
    });
  }

  /** Connects to the hub of `connectionString` (a device's, as the registry gives it),
   * retrying as the retry policy says; `signal` abandons the attempt. */
  static async connect(connectionString: string, options: DeviceClientOptions = {}): Promise<DeviceClient> {
    checkPem(options.cert, options.certFile, 'cert');
    checkPem(options.key, options.keyFile, 'key');
    const abort = nativeAbort(options.signal);
    const client = await untilAborted(
      options.signal,
      abort,
      native.DeviceClient.connect(
        checkString(connectionString, 'the connection string'),
        { ...clientOptions(options), transport: oneOf(Transport, options.transport ?? Transport.Mqtt, 'transport') },
        nativeRetry(options.retry),
        abort,
      ),
      (connected) => void connected.close(),
    );
    return new DeviceClient(client);
  }

  /** The next message, waiting at most `timeoutMs` (absent: as long as it takes); `null`
   * when the time is up. Rejects with `ClosedError` once the client is closed, with the
   * error that ended the connection for good, and with the signal's reason when `signal`
   * aborts (taking no message). */
  async receive(options: { timeoutMs?: number } & AbortOptions = {}): Promise<ReceivedMessage | null> {
    const { timeoutMs, signal } = options;
    const abort = nativeAbort(signal);
    if (++this.#atOnce % AT_ONCE === 0) {
      await turn();
      signal?.throwIfAborted();
    }
    // a message the client holds already comes back as is: no engine thread wakes this one
    const m = this.#native.receive(timeoutMs, abort);
    if (m instanceof native.ReceivedMessage) return m as ReceivedMessage;
    this.#atOnce = 0;
    const next = await untilAborted(signal, abort, m, (late) => late?.putBack());
    return (next as ReceivedMessage | null) ?? null;
  }

  /** Every message from now on; the iteration ends when the client is closed, throws the
   * error that ended the connection for good, and throws the signal's reason when `signal`
   * aborts (taking no message). */
  async *messages(options: AbortOptions = {}): AsyncGenerator<ReceivedMessage, void, undefined> {
    for (;;) {
      let m: ReceivedMessage | null;
      try {
        m = await this.receive(options);
      } catch (e) {
        if (isClosed(e)) return;
        throw e;
      }
      if (m) yield m;
    }
  }

  /** The same as {@link messages}. */
  [Symbol.asyncIterator](): AsyncGenerator<ReceivedMessage, void, undefined> {
    return this.messages();
  }

  /** The transport. */
  get transport(): Transport {
    return this.#native.transport as Transport;
  }

  /** How many duplicates were settled without being handed over (with
   * `suppressDuplicates`). */
  get duplicatesSuppressed(): number {
    return this.#native.duplicatesSuppressed;
  }

  /** The connection's status now. */
  get status(): ConnectionStatus {
    return connectionStatus(this.#native.status);
  }

  /** The status changes from now on; the iteration ends with the disconnected one (the
   * client closed, or given up on for good). */
  statusChanges(): AsyncGenerator<ConnectionStatus, void, undefined> {
    return statusIterator(this.#native.statusChanges());
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Disconnects, after the settlements already made have reached the hub. Messages not
   * settled go back to the hub's queue. Closing twice does nothing. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#native.close();
  }

  // Receives while someone listens: once the last 'message' listener is gone, the loop ends
  // when its receive does (that one message is still emitted), and later messages stay
  // queued at the hub; a new listener starts it again.
  async #emitMessages(): Promise<void> {
    try {
      while (this.listenerCount('message') > 0) {
        const m = await this.receive();
        if (m) this.emit('message', m);
      }
    } catch (e) {
      if (!isClosed(e)) this.emit('error', e as C2DError);
    } finally {
      this.#emittingMessages = false;
    }
  }

  async #emitStatus(changes: native.StatusChanges): Promise<void> {
    for await (const s of statusIterator(changes)) this.emit('status', s);
  }
}

// ---------------------------------------------------------------------------------------
// The service client

/** A message's outcome, as the hub reported it. */
export interface FeedbackRecord {
  /** The id of the message this is the outcome of. */
  originalMessageId: string;
  /** The device it was sent to. */
  deviceId: string;
  /** That device's generation id. */
  deviceGenerationId: string;
  /** When the outcome happened. */
  enqueuedTime: Date;
  /** The outcome. */
  status: FeedbackStatus;
  /** The hub's description of it. */
  description: string;
}

function feedbackRecord(r: native.FeedbackRecord): FeedbackRecord {
  return {
    originalMessageId: r.originalMessageId,
    deviceId: r.deviceId,
    deviceGenerationId: r.deviceGenerationId,
    enqueuedTime: new Date(r.enqueuedTimeMs),
    status: r.status as FeedbackStatus,
    description: r.description,
  };
}

async function* feedbackIterator(
  receiver: native.FeedbackReceiver,
  signal: AbortSignal | undefined,
): AsyncGenerator<FeedbackRecord, void, undefined> {
  for (;;) {
    const abort = nativeAbort(signal);
    const r = await untilAborted(signal, abort, receiver.next(abort));
    if (r === null || r === undefined) return;
    yield feedbackRecord(r);
  }
}

/** A message the hub accepted, whose own outcome can be awaited. */
export class SentMessage {
  readonly #native: native.SentMessage;
  /** @internal */
  constructor(sent: native.SentMessage) {
    this.#native = sent;
  }
  /** The message's id (generated when the message had none). */
  get messageId(): string {
    return this.#native.messageId;
  }
  /** This message's own feedback record (it must have been sent with an `ack` that asks for
   * it), waiting at most `timeoutMs` (absent: as long as it takes); rejects with
   * `OperationTimeoutError` when the time is up.
   *
   * The records come from the hub's one feedback endpoint, which IoT Hub gives to one reader
   * at a time: two service clients open on one hub take records from each other, and a
   * record can reach the client that did not send its message. Keep one client per hub, or
   * close one before connecting the next.
   *
   * The hub batches the records: one made after a quiet feedback interval (IoT Hub: about
   * 15 s) goes out at once, the next ones once that interval has passed since the batch
   * before. A `LocalHub` with `manualClock: true` counts that interval on its clock: a second
   * outcome comes only after `advanceClock()` moves it past the interval (or start the hub
   * with a short `feedbackIntervalMs`). */
  async outcome(options: { timeoutMs?: number } & AbortOptions = {}): Promise<FeedbackRecord> {
    const abort = nativeAbort(options.signal);
    return feedbackRecord(await untilAborted(options.signal, abort, this.#native.outcome(options.timeoutMs, abort)));
  }
}

/** A device in a hub's registry. */
export interface Device {
  /** Its id. */
  deviceId: string;
  /** Changes when a device of the same id is made again. */
  generationId: string;
  /** The registry's version of it. */
  etag: string;
  /** `enabled` or `disabled`. */
  status: string;
  /** `Connected` or `Disconnected`. */
  connectionState: string;
  /** How many messages are queued for it. */
  cloudToDeviceMessageCount: number;
  /** `sas`, `selfSigned`, `certificateAuthority` or `none`. */
  authenticationType: string;
  /** Its primary SAS key. */
  primaryKey: string | null;
  /** Its secondary SAS key. */
  secondaryKey: string | null;
  /** Its connection string with the primary key (`null` without a SAS key). */
  connectionString: string | null;
  /** IoT Hub's JSON of the device, as the registry returned it. */
  raw: Record<string, unknown>;
}

function device(d: native.DeviceRecord): Device {
  const raw = JSON.parse(d.json) as Record<string, any>;
  const auth = raw.authentication ?? {};
  const keys = auth.symmetricKey ?? {};
  return {
    deviceId: raw.deviceId,
    generationId: raw.generationId ?? '',
    etag: raw.etag ?? '',
    status: raw.status ?? '',
    connectionState: raw.connectionState ?? '',
    cloudToDeviceMessageCount: Number(raw.cloudToDeviceMessageCount ?? 0),
    authenticationType: auth.type ?? '',
    primaryKey: keys.primaryKey ?? null,
    secondaryKey: keys.secondaryKey ?? null,
    connectionString: d.connectionString ?? null,
    raw,
  };
}

/** The identity registry of a service client's hub (the policy needs the registry rights:
 * `iothubowner` has them). */
export class Registry {
  readonly #native: native.Registry;
  /** @internal */
  constructor(registry: native.Registry) {
    this.#native = registry;
  }
  /** Registers a device with keys the hub generates. */
  async createDevice(deviceId: string, options: AbortOptions = {}): Promise<Device> {
    const id = checkString(deviceId, 'deviceId');
    const abort = nativeAbort(options.signal);
    return device(await untilAborted(options.signal, abort, this.#native.createDevice(id, abort)));
  }
  /** A device; rejects with `DeviceNotFoundError` when there is none. */
  async getDevice(deviceId: string, options: AbortOptions = {}): Promise<Device> {
    const id = checkString(deviceId, 'deviceId');
    const abort = nativeAbort(options.signal);
    return device(await untilAborted(options.signal, abort, this.#native.getDevice(id, abort)));
  }
  /** Up to `top` (1000) devices. */
  async listDevices(options: { top?: number } & AbortOptions = {}): Promise<Device[]> {
    const abort = nativeAbort(options.signal);
    return (await untilAborted(options.signal, abort, this.#native.listDevices(options.top ?? 1000, abort))).map(device);
  }
  /** Deletes a device and its queue. */
  async deleteDevice(deviceId: string, options: AbortOptions = {}): Promise<void> {
    const id = checkString(deviceId, 'deviceId');
    const abort = nativeAbort(options.signal);
    await untilAborted(options.signal, abort, this.#native.deleteDevice(id, abort));
  }
}

/**
 * A back end's connection to its hub: send messages to devices, read their outcomes (each
 * message's own, or the whole feedback stream), purge a device's queue, and manage the
 * registry.
 */
export class ServiceClient {
  readonly #native: native.ServiceClient;
  /** The registry of the client's hub. */
  readonly registry: Registry;

  /** @internal */
  private constructor(client: native.ServiceClient) {
    this.#native = client;
    this.registry = new Registry(client.registry);
  }

  /** Connects to the hub of `connectionString` (a shared access policy's), retrying as the
   * retry policy says. */
  static async connect(connectionString: string, options: ServiceClientOptions = {}): Promise<ServiceClient> {
    const abort = nativeAbort(options.signal);
    const client = await untilAborted(
      options.signal,
      abort,
      native.ServiceClient.connect(
        checkString(connectionString, 'the connection string'),
        { ...clientOptions(options), transport: oneOf(ServiceTransport, options.transport ?? ServiceTransport.Amqp, 'transport') },
        nativeRetry(options.retry),
        abort,
      ),
      (connected) => void connected.close(),
    );
    return new ServiceClient(client);
  }

  /** Sends a message (a {@link Message}, or a body) to a device; resolves once the hub has
   * accepted it (stored it durably). Sends made together are in flight together. */
  async send(
    deviceId: string,
    message: Message | Buffer | Uint8Array | string,
    options: AbortOptions = {},
  ): Promise<SentMessage> {
    const m = message instanceof Message ? message : new Message(message);
    const id = checkString(deviceId, 'deviceId');
    const abort = nativeAbort(options.signal);
    return new SentMessage(await untilAborted(options.signal, abort, this.#native.send(id, m.toNative(), abort)));
  }

  /**
   * Sends `message` to every device of `devices` (an iterable or async iterable of ids,
   * taken as sends start, never all at once), each with its own message id: the message's
   * id, `:` and the device id, or a new UUID each when the message has none. Iterate over
   * the result (`for await`) for each device's {@link SendResult}, in the order they
   * complete; its `summary` says what the run did.
   *
   * At most `inFlight` sends wait for the hub at once, started at most `rate` a second, or
   * at the C2D send throttle of an IoT hub of `tier` (`S1`: 100 a minute a unit; `S3`:
   * 5 000) with `units`. Throttling and transient errors are retried per `retry` (the
   * client's policy when absent), a throttling also slowing the whole run; an unknown
   * device, a full queue or a message too large fail that device at once; refused
   * credentials or a closed client end the run (`summary.stopped`). Aborting `signal`, or
   * leaving the loop early, starts no new send: the sends in flight are still reported,
   * then the iteration ends and `summary.cancelled` is true.
   */
  sendMany(
    devices: Iterable<string> | AsyncIterable<string>,
    message: Message | Buffer | Uint8Array | string,
    options: SendManyOptions = {},
  ): SendMany {
    const m = message instanceof Message ? message : new Message(message);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new TypeError('signal must be an AbortSignal');
    }
    const run = this.#native.sendMany(
      m.toNative(),
      options.inFlight ?? 64,
      options.rate,
      options.tier,
      options.units,
      nativeRetry(options.retry),
    );
    return new SendMany(run, devices, options.signal);
  }

  /** Every feedback record from now on (from this call: each call follows the stream on
   * its own); the iteration ends when the client is closed, and throws the signal's reason
   * when `signal` aborts (taking no record). */
  feedback(options: AbortOptions = {}): AsyncGenerator<FeedbackRecord, void, undefined> {
    return feedbackIterator(this.#native.feedback(), options.signal);
  }

  /** Removes every message queued for a device; resolves to how many. */
  async purge(deviceId: string, options: AbortOptions = {}): Promise<number> {
    const id = checkString(deviceId, 'deviceId');
    const abort = nativeAbort(options.signal);
    return untilAborted(options.signal, abort, this.#native.purge(id, abort));
  }

  /** The connection's status now. */
  get status(): ConnectionStatus {
    return connectionStatus(this.#native.status);
  }

  /** The status changes from now on; the iteration ends with the disconnected one (the
   * client closed, or given up on for good). */
  statusChanges(): AsyncGenerator<ConnectionStatus, void, undefined> {
    return statusIterator(this.#native.statusChanges());
  }

  /** Closes the connection; waiting calls end with `ClosedError`. Closing twice does
   * nothing. */
  async close(): Promise<void> {
    await this.#native.close();
  }
}

// ---------------------------------------------------------------------------------------
// Sending to many devices

/** How {@link ServiceClient.sendMany} sends. */
export interface SendManyOptions extends AbortOptions {
  /** Sends waiting for the hub's answer at most (64). */
  inFlight?: number;
  /** Sends started a second at most (no limit when absent). */
  rate?: number;
  /** Pace to the C2D send throttle of an IoT hub of this tier (not with `rate`). */
  tier?: 'F1' | 'S1' | 'S2' | 'S3';
  /** The unit count of `tier` (1). */
  units?: number;
  /** How each device's send is retried (the client's policy when absent). */
  retry?: RetryPolicy | RetryFunction;
}

/** One device's result of a {@link ServiceClient.sendMany}: `sent` when the hub took the
 * message, else `error`, the error of its kind (`DeviceNotFoundError`, `QueueFullError`, …). */
export interface SendResult {
  /** The device. */
  deviceId: string;
  /** The message sent to it (its id, its outcome), or null. */
  sent: SentMessage | null;
  /** Why it was not sent, or null. */
  error: C2DError | null;
}

/** What a {@link SendMany} run did: so far while it runs, in all once it has ended. */
export interface FanOutSummary {
  /** Devices whose message the hub took. */
  sent: number;
  /** Devices it did not take, by error code (`{ C2D_DEVICE_NOT_FOUND: 10 }`). */
  failed: Record<string, number>;
  /** All devices it did not take. */
  failedTotal: number;
  /** Attempts made again after a throttling or transient error. */
  retried: number;
  /** Attempts the hub refused as throttled (retried or not). */
  throttled: number;
  /** Milliseconds from the call to the last result (or to now, while it runs). */
  elapsedMs: number;
  /** The error that ended the run before its last device (`UnauthorizedError`,
   * `ClosedError`): the devices after it were not tried. */
  stopped: C2DError | null;
  /** Whether the run was stopped early (`stop()`, its signal, a loop left early). */
  cancelled: boolean;
}

/** Device ids given to the engine at a time. */
const ID_CHUNK = 256;

/** A {@link ServiceClient.sendMany} run: an async iterable of each device's
 * {@link SendResult}, iterated once. */
export class SendMany implements AsyncIterable<SendResult> {
  readonly #native: native.SendMany;
  readonly #devices: Iterable<string> | AsyncIterable<string>;
  readonly #signal: AbortSignal | undefined;
  #started = false;
  #done = false;
  #feedError: unknown = undefined;

  /** @internal */
  constructor(run: native.SendMany, devices: Iterable<string> | AsyncIterable<string>, signal: AbortSignal | undefined) {
    this.#native = run;
    this.#devices = devices;
    this.#signal = signal;
  }

  /** What the run did so far; final once the iteration has ended. */
  get summary(): FanOutSummary {
    const s = this.#native.summary;
    return {
      sent: s.sent,
      failed: s.failed,
      failedTotal: Object.values(s.failed).reduce((a, b) => a + b, 0),
      retried: s.retried,
      throttled: s.throttled,
      elapsedMs: s.elapsedMs,
      stopped: s.stoppedCode ? makeError(s.stoppedCode, s.stoppedMessage ?? '') : null,
      cancelled: s.cancelled,
    };
  }

  /** Starts no new send; those in flight are still reported, then the iteration ends. */
  stop(): void {
    if (!this.#done) this.#native.stop();
  }

  /** Gives the engine the ids as it has room for them; an id source that throws ends the
   * ids (those before are still sent) and its error ends the iteration. */
  async #feed(): Promise<void> {
    let chunk: string[] = [];
    try {
      for await (const id of this.#devices) {
        chunk.push(checkString(id, 'a device id'));
        if (chunk.length >= ID_CHUNK) {
          if (!(await this.#native.feed(chunk))) return;
          chunk = [];
        }
      }
    } catch (e) {
      this.#feedError = e;
    }
    try {
      if (chunk.length > 0) await this.#native.feed(chunk);
    } finally {
      this.#native.endIds();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SendResult, void, undefined> {
    if (this.#started) throw new TypeError('a SendMany is iterated once');
    this.#started = true;
    const onAbort = () => this.stop();
    this.#signal?.addEventListener('abort', onAbort, { once: true });
    if (this.#signal?.aborted) this.stop();
    const feeding = this.#feed();
    try {
      for (;;) {
        const batch = await this.#native.nextBatch(ID_CHUNK);
        if (batch.done) this.#done = true;
        for (const item of batch.items) {
          yield {
            deviceId: item.deviceId,
            sent: item.sent ? new SentMessage(item.sent) : null,
            error: item.errorCode ? makeError(item.errorCode, item.errorMessage ?? '') : null,
          };
        }
        if (batch.done) break;
      }
      await feeding;
      if (this.#feedError !== undefined) throw this.#feedError;
    } finally {
      this.#signal?.removeEventListener('abort', onAbort);
      // a loop left early (break, an exception) starts no more sends
      this.stop();
    }
  }
}

// ---------------------------------------------------------------------------------------
// The local hub

/** A local hub's options; IoT Hub's rules where absent. */
export interface LocalHubOptions {
  /** The data directory (a temporary one, removed by `stop()`, when absent). */
  dataDir?: string;
  /** Keep a manual clock, moved by `advanceClock()`, for TTL and lock expiry in tests.
   * Feedback batching follows it too: a record made within `feedbackIntervalMs` (15 s by
   * default) of the previous batch goes out, and `outcome()` resolves, only once the clock is
   * advanced past it. */
  manualClock?: boolean;
  /** How many messages a device's queue holds (50). */
  maxQueueDepth?: number;
  /** The largest message, in bytes (64 KiB). */
  maxMessageSize?: number;
  /** The time to live of a message sent without one, in milliseconds (1 h). */
  defaultTtlMs?: number;
  /** How long a delivered message stays locked, in milliseconds (1 min). */
  lockTimeoutMs?: number;
  /** How many deliveries a message gets (10). */
  maxDeliveryCount?: number;
  /** How long feedback records are batched, in milliseconds. */
  feedbackIntervalMs?: number;
  /** `fsync` (an accepted message is on disk: the default) or `os` (left to the OS). */
  durability?: 'fsync' | 'os';
  /** Throttle as an IoT hub of this tier: C2D sends, HTTPS receives and registry operations
   * at the tier's rates times `units`, a request over the rate held up to
   * `throttleBacklogMs` (1 000), then refused with IoT Hub's throttling error
   * (`ThrottledError` to c2d's clients). Not at all when absent. */
  tier?: 'F1' | 'S1' | 'S2' | 'S3';
  /** The unit count of `tier` (1). */
  units?: number;
  /** How long a request over the tier's rate waits its turn before it is refused. */
  throttleBacklogMs?: number;
}

/** An X.509 device made by {@link LocalHub.createX509Device}. */
export interface X509Identity {
  /** `HostName=…;DeviceId=…;x509=true` */
  connectionString: string;
  /** The device's certificate, PEM. */
  certPem: string;
  /** Its private key, PEM. */
  keyPem: string;
}

/**
 * A c2d hub in this process, on free ports of 127.0.0.1, speaking IoT Hub's protocols with
 * its own development CA: for tests and development. Stop it with `stop()` (a hub that is
 * collected first is stopped in the background).
 */
export class LocalHub {
  readonly #native: native.LocalHub;

  /** @internal */
  private constructor(hub: native.LocalHub) {
    this.#native = hub;
  }

  /** Starts a hub. */
  static async start(options: LocalHubOptions = {}): Promise<LocalHub> {
    return new LocalHub(await native.LocalHub.start(options));
  }

  /** The host name in the hub's connection strings. */
  get hostName(): string {
    return this.#native.hostName;
  }
  /** The MQTT port. */
  get mqttPort(): number {
    return this.#native.mqttPort;
  }
  /** The AMQP port. */
  get amqpPort(): number {
    return this.#native.amqpPort;
  }
  /** The HTTPS (and WebSocket) port. */
  get httpsPort(): number {
    return this.#native.httpsPort;
  }
  /** The PEM of the hub's development CA, which clients must trust. */
  get caPem(): string {
    return this.#native.caPem;
  }
  /** The file holding that CA. */
  get caFile(): string {
    return this.#native.caFile;
  }
  /** The data directory. */
  get dataDir(): string {
    return this.#native.dataDir;
  }
  /** The `service` policy's connection string (send, feedback, purge). */
  get serviceConnectionString(): string {
    return this.#native.serviceConnectionString;
  }
  /** The `iothubowner` policy's connection string (everything, the registry too). */
  get ownerConnectionString(): string {
    return this.#native.ownerConnectionString;
  }
  /**
   * The address of the hub's live page (devices, queues, feedback) with the token that opens
   * it, new at every start; the token also reads `/metrics` as `Authorization: Bearer …`.
   */
  get uiUrl(): string {
    return this.#native.uiUrl;
  }
  /** What a service client needs to reach this hub: its CA and ports. */
  serviceOptions(): ServiceClientOptions {
    return { trustedCa: this.caPem, amqpPort: this.amqpPort, httpsPort: this.httpsPort };
  }
  /** What a device client needs to reach this hub: its CA and ports. */
  deviceOptions(): DeviceClientOptions {
    return { trustedCa: this.caPem, mqttPort: this.mqttPort, amqpPort: this.amqpPort, httpsPort: this.httpsPort };
  }
  /** Registers a device; resolves to its connection string. */
  async createDevice(deviceId: string): Promise<string> {
    return this.#native.createDevice(checkString(deviceId, 'deviceId'));
  }
  /** Registers an X.509 device (`selfSigned`) with a new self-signed certificate, valid for
   * a year: connect with `DeviceClient.connect(id.connectionString, { cert: id.certPem,
   * key: id.keyPem, … })`. */
  async createX509Device(deviceId: string): Promise<X509Identity> {
    return this.#native.createX509Device(checkString(deviceId, 'deviceId'));
  }
  /** Throttles as an IoT hub of `tier` with `units` from now on (`null`: no longer). */
  setThrottling(tier: 'F1' | 'S1' | 'S2' | 'S3' | null, units = 1, backlogMs?: number): void {
    this.#native.setThrottling(tier ?? undefined, units, backlogMs);
  }
  /** Requests the hub refused for `reason` since it started (`throttled`, …), as `/metrics`
   * counts them. */
  refusals(reason: string): number {
    return this.#native.refusals(checkString(reason, 'reason'));
  }
  /** How many messages are queued for a device (locked ones included). */
  queueDepth(deviceId: string): number {
    return this.#native.queueDepth(checkString(deviceId, 'deviceId'));
  }
  /** Moves the manual clock forward by `ms` (the hub must have been started with
   * `manualClock: true`). */
  advanceClock(ms: number): void {
    this.#native.advanceClock(ms);
  }
  /** Faults on demand: drop connections, lose acknowledgements, delay deliveries, stall the
   * store, refuse sends, expire locks. */
  get faults(): Faults {
    return new Faults(this.#native);
  }
  /** Stops the hub (its clients see the connection end) and removes a temporary data
   * directory. Stopping twice does nothing. */
  async stop(): Promise<void> {
    await this.#native.stop();
  }
}

/** A fault in force, as `Faults.active()` lists it. */
export type ActiveFault =
  | { fault: 'lose-acks'; device: string; count: number }
  | { fault: 'delay'; device: string; delay_ms: number }
  | { fault: 'stall-store'; for_ms: number }
  | { fault: 'refuse-sends'; error: SendRefusal; count?: number; for_ms?: number };

/** The IoT Hub error a refused send gets: `throttled` (429001, `ThrottledError`), `busy`
 * (503001, `UnavailableError`), `quota` (403002, `QuotaExceededError`). */
export type SendRefusal = 'throttled' | 'busy' | 'quota';

/** Faults on demand in a running `LocalHub` (`hub.faults`): the hub misbehaves the way IoT
 * Hub, or the network in front of it, can — for real, over the wire, so every client sees
 * it. Each is logged by the hub, counted in its `/metrics` (`c2d_hub_faults_total`) and shown
 * on its live page while it lasts; `c2d hub fault …` does the same to a running `c2d hub`. */
export class Faults {
  readonly #native: native.LocalHub;

  /** @internal */
  constructor(hub: native.LocalHub) {
    this.#native = hub;
  }

  #apply(fault: Record<string, unknown>): number {
    return this.#native.applyFault(JSON.stringify(fault));
  }

  /** Ends the device's connections now, the way a network drop looks (no DISCONNECT or close
   * frame), or with the protocol's close when `polite`; the messages they held locked go back
   * to the queue and the device reconnects by itself. Returns how many ended (HTTPS devices
   * hold none). */
  dropConnections(deviceId: string, options: { polite?: boolean } = {}): number {
    return this.#apply({ fault: 'drop', device: checkString(deviceId, 'deviceId'), polite: options.polite ?? false });
  }
  /** Ends every device connection over `transport` (`'mqtt'`, `'mqtt_ws'`, `'amqp'`,
   * `'amqp_ws'`); returns how many. */
  dropTransport(transport: Transport, options: { polite?: boolean } = {}): number {
    return this.#apply({ fault: 'drop', transport, polite: options.polite ?? false });
  }
  /** Loses the device's next `count` acknowledgements (complete, reject, abandon), as a
   * PUBACK lost on the way is: the message stays locked until its lock runs out (or
   * `expireLocks()`), then comes again. */
  loseAcks(deviceId: string, count = 1): void {
    this.#apply({ fault: 'lose-acks', device: checkString(deviceId, 'deviceId'), count });
  }
  /** Holds every delivery to the device for `ms` before it is sent, until `clear()`. */
  delayDeliveries(deviceId: string, ms: number): void {
    this.#apply({ fault: 'delay', device: checkString(deviceId, 'deviceId'), delay_ms: ms });
  }
  /** Holds the hub's store commits for `ms`, as a slow disk would: sends wait for their
   * answer (unless their device completes them first), nothing is lost. */
  stallStore(ms: number): void {
    this.#apply({ fault: 'stall-store', for_ms: ms });
  }
  /** Refuses C2D sends with one of IoT Hub's errors: the next `count`, or all for `ms`. */
  refuseSends(error: SendRefusal, options: { count?: number; ms?: number }): void {
    this.#apply({ fault: 'refuse-sends', error, count: options.count, for_ms: options.ms });
  }
  /** Ends every message lock now, as if each had run out: the messages come again. Returns
   * how many. */
  expireLocks(): number {
    return this.#apply({ fault: 'expire-locks' });
  }
  /** Ends every fault in force. */
  clear(): void {
    this.#native.clearFaults();
  }
  /** The faults in force, with what is left of each. */
  active(): ActiveFault[] {
    return JSON.parse(this.#native.activeFaults()) as ActiveFault[];
  }
  /** Acknowledgements lost to `loseAcks()` since the hub started. */
  get acksLost(): number {
    return this.#native.acksLost();
  }
}

/** The version of the package and its engine. */
export const version: string = native.version();
