"use strict";
// The c2d package: Azure IoT Hub cloud-to-device messaging for Node.js on c2d's Rust engine.
//
// This file is the package's source; `npm run build:types` compiles it to index.js and
// index.d.ts, which are committed (installing the package needs no TypeScript). The native
// addon (native.js, built from ./src by the install script) does the work; this layer gives
// it JavaScript's shapes: error classes, enums, Dates, async iterators and an EventEmitter.
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.version = exports.Faults = exports.LocalHub = exports.SendMany = exports.ServiceClient = exports.Registry = exports.SentMessage = exports.DeviceClient = exports.ReceivedMessage = exports.Message = exports.RetryPolicy = exports.QuotaExceededError = exports.InternalError = exports.ProtocolError = exports.ClosedError = exports.UnsupportedError = exports.AlreadySettledError = exports.MessageLockLostError = exports.OperationTimeoutError = exports.UnavailableError = exports.ThrottledError = exports.MessageTooLargeError = exports.QueueFullError = exports.DeviceNotFoundError = exports.UnauthorizedError = exports.InvalidArgumentError = exports.C2DError = exports.ConnectionState = exports.FeedbackStatus = exports.Ack = exports.ServiceTransport = exports.Transport = void 0;
const node_events_1 = require("node:events");
const native = __importStar(require("./native"));
// ---------------------------------------------------------------------------------------
// Enums
/** How a device reaches its hub. */
exports.Transport = {
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
};
/** How a back end reaches its hub. */
exports.ServiceTransport = {
    /** AMQP 1.0 over TLS (5671). */
    Amqp: 'amqp',
    /** AMQP over a WebSocket (443). */
    AmqpWs: 'amqp_ws',
};
/** Which outcomes of a message produce a feedback record. */
exports.Ack = {
    /** None. */
    None: 'none',
    /** Success. */
    Positive: 'positive',
    /** Expired, DeliveryCountExceeded, Rejected, Purged. */
    Negative: 'negative',
    /** All of them. */
    Full: 'full',
};
/** A message's outcome. */
exports.FeedbackStatus = {
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
};
/** Where a client's connection stands. */
exports.ConnectionState = {
    /** Connected. */
    Connected: 'connected',
    /** The connection dropped; reconnecting as the retry policy says. */
    Reconnecting: 'reconnecting',
    /** Closed, or given up on for good (the status says why). */
    Disconnected: 'disconnected',
};
function oneOf(values, value, what) {
    const allowed = Object.values(values);
    if (typeof value === 'string' && allowed.includes(value))
        return value;
    throw new InvalidArgumentError(`${what} must be one of ${allowed.join(', ')}, not ${String(value)}`);
}
/** The base class of every error c2d raises; `err.code` says its kind. */
class C2DError extends Error {
    /** The kind of error, stable across versions. */
    code;
    /** Whether retrying the same operation later may succeed. */
    get transient() {
        return native.isTransientCode(this.code);
    }
    constructor(message, code = 'C2D_INTERNAL') {
        super(message);
        this.code = code;
    }
    static {
        Object.defineProperty(this.prototype, 'name', { value: 'C2DError', writable: true, configurable: true });
    }
}
exports.C2DError = C2DError;
function errorClass(name, code) {
    const cls = class extends C2DError {
        constructor(message) {
            super(message, code);
        }
    };
    Object.defineProperty(cls, 'name', { value: name });
    Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
    return cls;
}
/** A malformed connection string, option or message: fix the call. */
class InvalidArgumentError extends errorClass('InvalidArgumentError', 'C2D_INVALID_ARGUMENT') {
}
exports.InvalidArgumentError = InvalidArgumentError;
/** The hub refused the credentials (a wrong key, an expired token, a policy without the right). */
class UnauthorizedError extends errorClass('UnauthorizedError', 'C2D_UNAUTHORIZED') {
}
exports.UnauthorizedError = UnauthorizedError;
/** No such device in the hub's registry. */
class DeviceNotFoundError extends errorClass('DeviceNotFoundError', 'C2D_DEVICE_NOT_FOUND') {
}
exports.DeviceNotFoundError = DeviceNotFoundError;
/** The device's queue holds as many messages as the hub allows. */
class QueueFullError extends errorClass('QueueFullError', 'C2D_QUEUE_FULL') {
}
exports.QueueFullError = QueueFullError;
/** The message is larger than the hub accepts. */
class MessageTooLargeError extends errorClass('MessageTooLargeError', 'C2D_MESSAGE_TOO_LARGE') {
}
exports.MessageTooLargeError = MessageTooLargeError;
/** The hub is throttling: retry later. */
class ThrottledError extends errorClass('ThrottledError', 'C2D_THROTTLED') {
}
exports.ThrottledError = ThrottledError;
/** The hub cannot be reached, or dropped the connection. */
class UnavailableError extends errorClass('UnavailableError', 'C2D_UNAVAILABLE') {
}
exports.UnavailableError = UnavailableError;
/** The operation did not finish in time. */
class OperationTimeoutError extends errorClass('OperationTimeoutError', 'C2D_TIMEOUT') {
}
exports.OperationTimeoutError = OperationTimeoutError;
/** The message's lock ended (or its connection closed) before it was settled; the hub
 * delivers it again. */
class MessageLockLostError extends errorClass('MessageLockLostError', 'C2D_MESSAGE_LOCK_LOST') {
}
exports.MessageLockLostError = MessageLockLostError;
/** The delivery was already settled. */
class AlreadySettledError extends errorClass('AlreadySettledError', 'C2D_ALREADY_SETTLED') {
}
exports.AlreadySettledError = AlreadySettledError;
/** The transport cannot do that (MQTT cannot reject or abandon). */
class UnsupportedError extends errorClass('UnsupportedError', 'C2D_UNSUPPORTED') {
}
exports.UnsupportedError = UnsupportedError;
/** The client was closed. */
class ClosedError extends errorClass('ClosedError', 'C2D_CLOSED') {
}
exports.ClosedError = ClosedError;
/** The hub answered something the protocol does not allow. */
class ProtocolError extends errorClass('ProtocolError', 'C2D_PROTOCOL') {
}
exports.ProtocolError = ProtocolError;
/** A bug of c2d: please report it. */
class InternalError extends errorClass('InternalError', 'C2D_INTERNAL') {
}
exports.InternalError = InternalError;
/** The hub's daily message quota is used up (IoT Hub 403002): retrying within the day does
 * not help; wait for the quota to reset (00:00 UTC) or add units. */
class QuotaExceededError extends errorClass('QuotaExceededError', 'C2D_QUOTA_EXCEEDED') {
}
exports.QuotaExceededError = QuotaExceededError;
const errorClasses = {
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
function makeError(code, message) {
    const cls = errorClasses[code];
    return cls ? new cls(message) : new InternalError(`${message} (unknown error code ${code})`);
}
native.setErrorFactory(makeError);
function isClosed(e) {
    return e instanceof ClosedError;
}
// A receive that finds its message at once (no I/O between them) lets the event loop run
// after this many in a row: a drain of buffered messages resolves promises only, which would
// otherwise keep timers and sockets waiting for as long as messages keep coming.
const AT_ONCE = 16;
/** A turn of the event loop. */
function turn() {
    return new Promise((resolve) => setImmediate(resolve));
}
/** The native side of `signal` for a call about to start; throws the signal's reason when it
 * is aborted already, before the call does anything. */
function nativeAbort(signal) {
    if (signal === undefined)
        return undefined;
    if (!(signal instanceof AbortSignal))
        throw new TypeError('signal must be an AbortSignal');
    signal.throwIfAborted();
    return new native.Abort();
}
/** `work`, or, as soon as `signal` aborts, a rejection with its reason while `abort` (the
 * native side given to the call) drops the work; what the work still yields afterwards goes
 * to `giveBack` (a received message, handed back to its client). */
function untilAborted(signal, abort, work, giveBack) {
    if (signal === undefined || abort === undefined)
        return work;
    return new Promise((resolve, reject) => {
        const onAbort = () => {
            abort.abort();
            reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        work.then((value) => {
            signal.removeEventListener('abort', onAbort);
            if (signal.aborted)
                giveBack?.(value);
            else
                resolve(value);
        }, (error) => {
            signal.removeEventListener('abort', onAbort);
            reject(error);
        });
    });
}
/** How connecting and operations are retried after a transient error (errors that retrying
 * cannot fix are never retried). */
class RetryPolicy {
    /** @internal */
    native;
    constructor(policy) {
        this.native = policy;
    }
    /** Never retry. */
    static none() {
        return new RetryPolicy(native.RetryPolicy.none());
    }
    /** The same wait every time; at most `maxRetries` retries (absent: no limit). */
    static fixed(intervalMs, options = {}) {
        return new RetryPolicy(native.RetryPolicy.fixed(intervalMs, options.maxRetries));
    }
    /** Waits that double from `initialMs` (100) up to `maxMs` (10 000), each shortened by a
     * random part of up to `jitter` (0.25) of itself; at most `maxRetries` retries (absent: no
     * limit). The default policy. */
    static exponentialBackoff(options = {}) {
        const { initialMs = 100, maxMs = 10_000, jitter = 0.25, maxRetries } = options;
        return new RetryPolicy(native.RetryPolicy.exponentialBackoff(initialMs, maxMs, jitter, maxRetries));
    }
    /** A policy of your own (see {@link RetryFunction}). It runs on the JavaScript thread while
     * the engine waits for its answer: keep it quick. If it throws, or answers something that
     * is not a number, retrying stops (a thrown error is reported as a process warning). */
    static custom(decide) {
        if (typeof decide !== 'function')
            throw new TypeError('RetryPolicy.custom takes a function');
        return new RetryPolicy(native.RetryPolicy.custom((attempt, code, message) => {
            try {
                const wait = decide(attempt, makeError(code, message));
                return typeof wait === 'number' ? wait : null;
            }
            catch (e) {
                process.emitWarning(`c2d: the retry function threw, so retrying stops: ${String(e)}`);
                return null;
            }
        }));
    }
    /** How it was made. */
    toString() {
        return this.native.toString();
    }
}
exports.RetryPolicy = RetryPolicy;
function nativeRetry(retry) {
    if (retry === undefined)
        return undefined;
    if (retry instanceof RetryPolicy)
        return retry.native;
    if (typeof retry === 'function')
        return RetryPolicy.custom(retry).native;
    throw new TypeError('retry must be a RetryPolicy or a function (attempt, error) => ms | null');
}
/** A C2D message to send. A string body is sent as UTF-8. */
class Message {
    /** The body. */
    body;
    /** Which outcomes produce a feedback record. */
    ack;
    /** The time to live in milliseconds (the hub's default when absent). */
    ttlMs;
    /** The message id (generated when absent). */
    messageId;
    /** The correlation id. */
    correlationId;
    /** The content type. */
    contentType;
    /** The content encoding. */
    contentEncoding;
    /** Application properties. */
    properties;
    constructor(body, options = {}) {
        if (typeof body === 'string')
            this.body = Buffer.from(body, 'utf8');
        else if (body instanceof Uint8Array)
            this.body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        else
            throw new TypeError('a message body is a Buffer, a Uint8Array or a string');
        this.ack = options.ack ?? exports.Ack.None;
        this.ttlMs = options.ttlMs;
        this.messageId = options.messageId;
        this.correlationId = options.correlationId;
        this.contentType = options.contentType;
        this.contentEncoding = options.contentEncoding;
        this.properties = { ...(options.properties ?? {}) };
    }
    /** @internal */
    toNative() {
        const properties = [];
        for (const [name, value] of Object.entries(this.properties)) {
            if (typeof value !== 'string')
                throw new TypeError(`message property ${name} is not a string`);
            properties.push(name, value);
        }
        return {
            body: this.body,
            ack: oneOf(exports.Ack, this.ack, 'ack'),
            ttlMs: this.ttlMs,
            messageId: this.messageId,
            correlationId: this.correlationId,
            contentType: this.contentType,
            contentEncoding: this.contentEncoding,
            properties,
        };
    }
}
exports.Message = Message;
/** A message a device received (see the interface). */
exports.ReceivedMessage = native.ReceivedMessage;
// the settles, on the addon's class: its `settle(how, abort)` with an AbortSignal
for (const how of ['complete', 'reject', 'abandon']) {
    Object.defineProperty(native.ReceivedMessage.prototype, how, {
        value(options = {}) {
            let abort;
            try {
                abort = nativeAbort(options.signal);
            }
            catch (e) {
                return Promise.reject(e);
            }
            return untilAborted(options.signal, abort, this.settle(how, abort));
        },
        writable: true,
        configurable: true,
    });
}
function connectionStatus(s) {
    return { state: s.state, reason: s.reason ?? null };
}
async function* statusIterator(changes) {
    for (;;) {
        const next = await changes.next();
        if (next === null || next === undefined)
            return;
        yield connectionStatus(next);
    }
}
function checkString(value, what) {
    if (typeof value !== 'string')
        throw new TypeError(`${what} must be a string`);
    return value;
}
/** The options every client's `connect` checks the same way, without `retry`. */
function clientOptions(options) {
    const { retry: _retry, signal: _signal, ...rest } = options;
    checkPem(options.trustedCa, options.trustedCaFile, 'trustedCa');
    if (options.proxy !== undefined)
        checkString(options.proxy, 'proxy');
    return rest;
}
/** Checks the types of a PEM option (`name`: a string or a Buffer) and its file form. */
function checkPem(pem, file, name) {
    if (pem !== undefined && typeof pem !== 'string' && !Buffer.isBuffer(pem)) {
        throw new TypeError(`${name} must be PEM text (a string) or a Buffer`);
    }
    if (file !== undefined)
        checkString(file, `${name}File`);
}
/**
 * A device's connection to its hub. Receive with `await client.receive()`, with
 * `for await (const msg of client.messages())`, or, as with `azure-iot-device`, with
 * `client.on('message', msg => …)`; settle each message once. The client reconnects and
 * subscribes again by itself as its retry policy says.
 */
class DeviceClient extends node_events_1.EventEmitter {
    #native;
    #closed = false;
    #atOnce = 0;
    #emittingMessages = false;
    #emittingStatus = false;
    /** @internal */
    constructor(client) {
        super();
        this.#native = client;
        // receiving starts with the first 'message' listener, as with azure-iot-device
        this.on('newListener', (event) => {
            if (event === 'message' && !this.#emittingMessages) {
                this.#emittingMessages = true;
                queueMicrotask(() => void this.#emitMessages());
            }
            else if (event === 'status' && !this.#emittingStatus) {
                this.#emittingStatus = true;
                void this.#emitStatus(this.#native.statusChanges());
            }
        });
    }
    /** Connects to the hub of `connectionString` (a device's, as the registry gives it),
     * retrying as the retry policy says; `signal` abandons the attempt. */
    static async connect(connectionString, options = {}) {
        checkPem(options.cert, options.certFile, 'cert');
        checkPem(options.key, options.keyFile, 'key');
        const abort = nativeAbort(options.signal);
        const client = await untilAborted(options.signal, abort, native.DeviceClient.connect(checkString(connectionString, 'the connection string'), { ...clientOptions(options), transport: oneOf(exports.Transport, options.transport ?? exports.Transport.Mqtt, 'transport') }, nativeRetry(options.retry), abort), (connected) => void connected.close());
        return new DeviceClient(client);
    }
    /** The next message, waiting at most `timeoutMs` (absent: as long as it takes); `null`
     * when the time is up. Rejects with `ClosedError` once the client is closed, with the
     * error that ended the connection for good, and with the signal's reason when `signal`
     * aborts (taking no message). */
    async receive(options = {}) {
        const { timeoutMs, signal } = options;
        const abort = nativeAbort(signal);
        if (++this.#atOnce % AT_ONCE === 0) {
            await turn();
            signal?.throwIfAborted();
        }
        // a message the client holds already comes back as is: no engine thread wakes this one
        const m = this.#native.receive(timeoutMs, abort);
        if (m instanceof native.ReceivedMessage)
            return m;
        this.#atOnce = 0;
        const next = await untilAborted(signal, abort, m, (late) => late?.putBack());
        return next ?? null;
    }
    /** Every message from now on; the iteration ends when the client is closed, throws the
     * error that ended the connection for good, and throws the signal's reason when `signal`
     * aborts (taking no message). */
    async *messages(options = {}) {
        for (;;) {
            let m;
            try {
                m = await this.receive(options);
            }
            catch (e) {
                if (isClosed(e))
                    return;
                throw e;
            }
            if (m)
                yield m;
        }
    }
    /** The same as {@link messages}. */
    [Symbol.asyncIterator]() {
        return this.messages();
    }
    /** The transport. */
    get transport() {
        return this.#native.transport;
    }
    /** How many duplicates were settled without being handed over (with
     * `suppressDuplicates`). */
    get duplicatesSuppressed() {
        return this.#native.duplicatesSuppressed;
    }
    /** The connection's status now. */
    get status() {
        return connectionStatus(this.#native.status);
    }
    /** The status changes from now on; the iteration ends with the disconnected one (the
     * client closed, or given up on for good). */
    statusChanges() {
        return statusIterator(this.#native.statusChanges());
    }
    /** Whether {@link close} was called. */
    get closed() {
        return this.#closed;
    }
    /** Disconnects, after the settlements already made have reached the hub. Messages not
     * settled go back to the hub's queue. Closing twice does nothing. */
    async close() {
        this.#closed = true;
        await this.#native.close();
    }
    // Receives while someone listens: once the last 'message' listener is gone, the loop ends
    // when its receive does (that one message is still emitted), and later messages stay
    // queued at the hub; a new listener starts it again.
    async #emitMessages() {
        try {
            while (this.listenerCount('message') > 0) {
                const m = await this.receive();
                if (m)
                    this.emit('message', m);
            }
        }
        catch (e) {
            if (!isClosed(e))
                this.emit('error', e);
        }
        finally {
            this.#emittingMessages = false;
        }
    }
    async #emitStatus(changes) {
        for await (const s of statusIterator(changes))
            this.emit('status', s);
    }
}
exports.DeviceClient = DeviceClient;
function feedbackRecord(r) {
    return {
        originalMessageId: r.originalMessageId,
        deviceId: r.deviceId,
        deviceGenerationId: r.deviceGenerationId,
        enqueuedTime: new Date(r.enqueuedTimeMs),
        status: r.status,
        description: r.description,
    };
}
async function* feedbackIterator(receiver, signal) {
    for (;;) {
        const abort = nativeAbort(signal);
        const r = await untilAborted(signal, abort, receiver.next(abort));
        if (r === null || r === undefined)
            return;
        yield feedbackRecord(r);
    }
}
/** A message the hub accepted, whose own outcome can be awaited. */
class SentMessage {
    #native;
    /** @internal */
    constructor(sent) {
        this.#native = sent;
    }
    /** The message's id (generated when the message had none). */
    get messageId() {
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
    async outcome(options = {}) {
        const abort = nativeAbort(options.signal);
        return feedbackRecord(await untilAborted(options.signal, abort, this.#native.outcome(options.timeoutMs, abort)));
    }
}
exports.SentMessage = SentMessage;
function device(d) {
    const raw = JSON.parse(d.json);
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
class Registry {
    #native;
    /** @internal */
    constructor(registry) {
        this.#native = registry;
    }
    /** Registers a device with keys the hub generates. */
    async createDevice(deviceId, options = {}) {
        const id = checkString(deviceId, 'deviceId');
        const abort = nativeAbort(options.signal);
        return device(await untilAborted(options.signal, abort, this.#native.createDevice(id, abort)));
    }
    /** A device; rejects with `DeviceNotFoundError` when there is none. */
    async getDevice(deviceId, options = {}) {
        const id = checkString(deviceId, 'deviceId');
        const abort = nativeAbort(options.signal);
        return device(await untilAborted(options.signal, abort, this.#native.getDevice(id, abort)));
    }
    /** Up to `top` (1000) devices. */
    async listDevices(options = {}) {
        const abort = nativeAbort(options.signal);
        return (await untilAborted(options.signal, abort, this.#native.listDevices(options.top ?? 1000, abort))).map(device);
    }
    /** Deletes a device and its queue. */
    async deleteDevice(deviceId, options = {}) {
        const id = checkString(deviceId, 'deviceId');
        const abort = nativeAbort(options.signal);
        await untilAborted(options.signal, abort, this.#native.deleteDevice(id, abort));
    }
}
exports.Registry = Registry;
/**
 * A back end's connection to its hub: send messages to devices, read their outcomes (each
 * message's own, or the whole feedback stream), purge a device's queue, and manage the
 * registry.
 */
class ServiceClient {
    #native;
    /** The registry of the client's hub. */
    registry;
    /** @internal */
    constructor(client) {
        this.#native = client;
        this.registry = new Registry(client.registry);
    }
    /** Connects to the hub of `connectionString` (a shared access policy's), retrying as the
     * retry policy says. */
    static async connect(connectionString, options = {}) {
        const abort = nativeAbort(options.signal);
        const client = await untilAborted(options.signal, abort, native.ServiceClient.connect(checkString(connectionString, 'the connection string'), { ...clientOptions(options), transport: oneOf(exports.ServiceTransport, options.transport ?? exports.ServiceTransport.Amqp, 'transport') }, nativeRetry(options.retry), abort), (connected) => void connected.close());
        return new ServiceClient(client);
    }
    /** Sends a message (a {@link Message}, or a body) to a device; resolves once the hub has
     * accepted it (stored it durably). Sends made together are in flight together. */
    async send(deviceId, message, options = {}) {
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
    sendMany(devices, message, options = {}) {
        const m = message instanceof Message ? message : new Message(message);
        if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
            throw new TypeError('signal must be an AbortSignal');
        }
        const run = this.#native.sendMany(m.toNative(), options.inFlight ?? 64, options.rate, options.tier, options.units, nativeRetry(options.retry));
        return new SendMany(run, devices, options.signal);
    }
    /** Every feedback record from now on (from this call: each call follows the stream on
     * its own); the iteration ends when the client is closed, and throws the signal's reason
     * when `signal` aborts (taking no record). */
    feedback(options = {}) {
        return feedbackIterator(this.#native.feedback(), options.signal);
    }
    /** Removes every message queued for a device; resolves to how many. */
    async purge(deviceId, options = {}) {
        const id = checkString(deviceId, 'deviceId');
        const abort = nativeAbort(options.signal);
        return untilAborted(options.signal, abort, this.#native.purge(id, abort));
    }
    /** The connection's status now. */
    get status() {
        return connectionStatus(this.#native.status);
    }
    /** The status changes from now on; the iteration ends with the disconnected one (the
     * client closed, or given up on for good). */
    statusChanges() {
        return statusIterator(this.#native.statusChanges());
    }
    /** Closes the connection; waiting calls end with `ClosedError`. Closing twice does
     * nothing. */
    async close() {
        await this.#native.close();
    }
}
exports.ServiceClient = ServiceClient;
/** Device ids given to the engine at a time. */
const ID_CHUNK = 256;
/** A {@link ServiceClient.sendMany} run: an async iterable of each device's
 * {@link SendResult}, iterated once. */
class SendMany {
    #native;
    #devices;
    #signal;
    #started = false;
    #done = false;
    #feedError = undefined;
    /** @internal */
    constructor(run, devices, signal) {
        this.#native = run;
        this.#devices = devices;
        this.#signal = signal;
    }
    /** What the run did so far; final once the iteration has ended. */
    get summary() {
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
    stop() {
        if (!this.#done)
            this.#native.stop();
    }
    /** Gives the engine the ids as it has room for them; an id source that throws ends the
     * ids (those before are still sent) and its error ends the iteration. */
    async #feed() {
        let chunk = [];
        try {
            for await (const id of this.#devices) {
                chunk.push(checkString(id, 'a device id'));
                if (chunk.length >= ID_CHUNK) {
                    if (!(await this.#native.feed(chunk)))
                        return;
                    chunk = [];
                }
            }
        }
        catch (e) {
            this.#feedError = e;
        }
        try {
            if (chunk.length > 0)
                await this.#native.feed(chunk);
        }
        finally {
            this.#native.endIds();
        }
    }
    async *[Symbol.asyncIterator]() {
        if (this.#started)
            throw new TypeError('a SendMany is iterated once');
        this.#started = true;
        const onAbort = () => this.stop();
        this.#signal?.addEventListener('abort', onAbort, { once: true });
        if (this.#signal?.aborted)
            this.stop();
        const feeding = this.#feed();
        try {
            for (;;) {
                const batch = await this.#native.nextBatch(ID_CHUNK);
                if (batch.done)
                    this.#done = true;
                for (const item of batch.items) {
                    yield {
                        deviceId: item.deviceId,
                        sent: item.sent ? new SentMessage(item.sent) : null,
                        error: item.errorCode ? makeError(item.errorCode, item.errorMessage ?? '') : null,
                    };
                }
                if (batch.done)
                    break;
            }
            await feeding;
            if (this.#feedError !== undefined)
                throw this.#feedError;
        }
        finally {
            this.#signal?.removeEventListener('abort', onAbort);
            // a loop left early (break, an exception) starts no more sends
            this.stop();
        }
    }
}
exports.SendMany = SendMany;
/**
 * A c2d hub in this process, on free ports of 127.0.0.1, speaking IoT Hub's protocols with
 * its own development CA: for tests and development. Stop it with `stop()` (a hub that is
 * collected first is stopped in the background).
 */
class LocalHub {
    #native;
    /** @internal */
    constructor(hub) {
        this.#native = hub;
    }
    /** Starts a hub. */
    static async start(options = {}) {
        return new LocalHub(await native.LocalHub.start(options));
    }
    /** The host name in the hub's connection strings. */
    get hostName() {
        return this.#native.hostName;
    }
    /** The MQTT port. */
    get mqttPort() {
        return this.#native.mqttPort;
    }
    /** The AMQP port. */
    get amqpPort() {
        return this.#native.amqpPort;
    }
    /** The HTTPS (and WebSocket) port. */
    get httpsPort() {
        return this.#native.httpsPort;
    }
    /** The PEM of the hub's development CA, which clients must trust. */
    get caPem() {
        return this.#native.caPem;
    }
    /** The file holding that CA. */
    get caFile() {
        return this.#native.caFile;
    }
    /** The data directory. */
    get dataDir() {
        return this.#native.dataDir;
    }
    /** The `service` policy's connection string (send, feedback, purge). */
    get serviceConnectionString() {
        return this.#native.serviceConnectionString;
    }
    /** The `iothubowner` policy's connection string (everything, the registry too). */
    get ownerConnectionString() {
        return this.#native.ownerConnectionString;
    }
    /**
     * The address of the hub's live page (devices, queues, feedback) with the token that opens
     * it, new at every start; the token also reads `/metrics` as `Authorization: Bearer …`.
     */
    get uiUrl() {
        return this.#native.uiUrl;
    }
    /** What a service client needs to reach this hub: its CA and ports. */
    serviceOptions() {
        return { trustedCa: this.caPem, amqpPort: this.amqpPort, httpsPort: this.httpsPort };
    }
    /** What a device client needs to reach this hub: its CA and ports. */
    deviceOptions() {
        return { trustedCa: this.caPem, mqttPort: this.mqttPort, amqpPort: this.amqpPort, httpsPort: this.httpsPort };
    }
    /** Registers a device; resolves to its connection string. */
    async createDevice(deviceId) {
        return this.#native.createDevice(checkString(deviceId, 'deviceId'));
    }
    /** Registers an X.509 device (`selfSigned`) with a new self-signed certificate, valid for
     * a year: connect with `DeviceClient.connect(id.connectionString, { cert: id.certPem,
     * key: id.keyPem, … })`. */
    async createX509Device(deviceId) {
        return this.#native.createX509Device(checkString(deviceId, 'deviceId'));
    }
    /** Throttles as an IoT hub of `tier` with `units` from now on (`null`: no longer). */
    setThrottling(tier, units = 1, backlogMs) {
        this.#native.setThrottling(tier ?? undefined, units, backlogMs);
    }
    /** Requests the hub refused for `reason` since it started (`throttled`, …), as `/metrics`
     * counts them. */
    refusals(reason) {
        return this.#native.refusals(checkString(reason, 'reason'));
    }
    /** How many messages are queued for a device (locked ones included). */
    queueDepth(deviceId) {
        return this.#native.queueDepth(checkString(deviceId, 'deviceId'));
    }
    /** Moves the manual clock forward by `ms` (the hub must have been started with
     * `manualClock: true`). */
    advanceClock(ms) {
        this.#native.advanceClock(ms);
    }
    /** Faults on demand: drop connections, lose acknowledgements, delay deliveries, stall the
     * store, refuse sends, expire locks. */
    get faults() {
        return new Faults(this.#native);
    }
    /** Stops the hub (its clients see the connection end) and removes a temporary data
     * directory. Stopping twice does nothing. */
    async stop() {
        await this.#native.stop();
    }
}
exports.LocalHub = LocalHub;
/** Faults on demand in a running `LocalHub` (`hub.faults`): the hub misbehaves the way IoT
 * Hub, or the network in front of it, can — for real, over the wire, so every client sees
 * it. Each is logged by the hub, counted in its `/metrics` (`c2d_hub_faults_total`) and shown
 * on its live page while it lasts; `c2d hub fault …` does the same to a running `c2d hub`. */
class Faults {
    #native;
    /** @internal */
    constructor(hub) {
        this.#native = hub;
    }
    #apply(fault) {
        return this.#native.applyFault(JSON.stringify(fault));
    }
    /** Ends the device's connections now, the way a network drop looks (no DISCONNECT or close
     * frame), or with the protocol's close when `polite`; the messages they held locked go back
     * to the queue and the device reconnects by itself. Returns how many ended (HTTPS devices
     * hold none). */
    dropConnections(deviceId, options = {}) {
        return this.#apply({ fault: 'drop', device: checkString(deviceId, 'deviceId'), polite: options.polite ?? false });
    }
    /** Ends every device connection over `transport` (`'mqtt'`, `'mqtt_ws'`, `'amqp'`,
     * `'amqp_ws'`); returns how many. */
    dropTransport(transport, options = {}) {
        return this.#apply({ fault: 'drop', transport, polite: options.polite ?? false });
    }
    /** Loses the device's next `count` acknowledgements (complete, reject, abandon), as a
     * PUBACK lost on the way is: the message stays locked until its lock runs out (or
     * `expireLocks()`), then comes again. */
    loseAcks(deviceId, count = 1) {
        this.#apply({ fault: 'lose-acks', device: checkString(deviceId, 'deviceId'), count });
    }
    /** Holds every delivery to the device for `ms` before it is sent, until `clear()`. */
    delayDeliveries(deviceId, ms) {
        this.#apply({ fault: 'delay', device: checkString(deviceId, 'deviceId'), delay_ms: ms });
    }
    /** Holds the hub's store commits for `ms`, as a slow disk would: sends wait for their
     * answer (unless their device completes them first), nothing is lost. */
    stallStore(ms) {
        this.#apply({ fault: 'stall-store', for_ms: ms });
    }
    /** Refuses C2D sends with one of IoT Hub's errors: the next `count`, or all for `ms`. */
    refuseSends(error, options) {
        this.#apply({ fault: 'refuse-sends', error, count: options.count, for_ms: options.ms });
    }
    /** Ends every message lock now, as if each had run out: the messages come again. Returns
     * how many. */
    expireLocks() {
        return this.#apply({ fault: 'expire-locks' });
    }
    /** Ends every fault in force. */
    clear() {
        this.#native.clearFaults();
    }
    /** The faults in force, with what is left of each. */
    active() {
        return JSON.parse(this.#native.activeFaults());
    }
    /** Acknowledgements lost to `loseAcks()` since the hub started. */
    get acksLost() {
        return this.#native.acksLost();
    }
}
exports.Faults = Faults;
/** The version of the package and its engine. */
exports.version = native.version();
