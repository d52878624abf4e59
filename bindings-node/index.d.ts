import { EventEmitter } from 'node:events';
import * as native from './native';
/** How a device reaches its hub. */
export declare const Transport: {
    /** MQTT 3.1.1 over TLS (8883). Complete only: MQTT cannot reject or abandon. */
    readonly Mqtt: "mqtt";
    /** MQTT over a WebSocket (443). */
    readonly MqttWs: "mqtt_ws";
    /** AMQP 1.0 over TLS (5671). */
    readonly Amqp: "amqp";
    /** AMQP over a WebSocket (443). */
    readonly AmqpWs: "amqp_ws";
    /** HTTPS polling (443): every settlement; messages arrive when the client polls (at
     * connect, then every `pollIntervalMs`, 25 minutes by default). */
    readonly Https: "https";
};
/** How a device reaches its hub. */
export type Transport = (typeof Transport)[keyof typeof Transport];
/** How a back end reaches its hub. */
export declare const ServiceTransport: {
    /** AMQP 1.0 over TLS (5671). */
    readonly Amqp: "amqp";
    /** AMQP over a WebSocket (443). */
    readonly AmqpWs: "amqp_ws";
};
/** How a back end reaches its hub. */
export type ServiceTransport = (typeof ServiceTransport)[keyof typeof ServiceTransport];
/** Which outcomes of a message produce a feedback record. */
export declare const Ack: {
    /** None. */
    readonly None: "none";
    /** Success. */
    readonly Positive: "positive";
    /** Expired, DeliveryCountExceeded, Rejected, Purged. */
    readonly Negative: "negative";
    /** All of them. */
    readonly Full: "full";
};
/** Which outcomes of a message produce a feedback record. */
export type Ack = (typeof Ack)[keyof typeof Ack];
/** A message's outcome. */
export declare const FeedbackStatus: {
    /** The device completed it. */
    readonly Success: "Success";
    /** Its time to live passed first. */
    readonly Expired: "Expired";
    /** It was delivered as many times as the hub allows. */
    readonly DeliveryCountExceeded: "DeliveryCountExceeded";
    /** The device rejected it. */
    readonly Rejected: "Rejected";
    /** The device's queue was purged. */
    readonly Purged: "Purged";
};
/** A message's outcome. */
export type FeedbackStatus = (typeof FeedbackStatus)[keyof typeof FeedbackStatus];
/** Where a client's connection stands. */
export declare const ConnectionState: {
    /** Connected. */
    readonly Connected: "connected";
    /** The connection dropped; reconnecting as the retry policy says. */
    readonly Reconnecting: "reconnecting";
    /** Closed, or given up on for good (the status says why). */
    readonly Disconnected: "disconnected";
};
/** Where a client's connection stands. */
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];
/** The `code` of every c2d error. */
export type ErrorCode = 'C2D_INVALID_ARGUMENT' | 'C2D_UNAUTHORIZED' | 'C2D_DEVICE_NOT_FOUND' | 'C2D_QUEUE_FULL' | 'C2D_MESSAGE_TOO_LARGE' | 'C2D_THROTTLED' | 'C2D_UNAVAILABLE' | 'C2D_TIMEOUT' | 'C2D_MESSAGE_LOCK_LOST' | 'C2D_ALREADY_SETTLED' | 'C2D_UNSUPPORTED' | 'C2D_CLOSED' | 'C2D_PROTOCOL' | 'C2D_INTERNAL' | 'C2D_QUOTA_EXCEEDED';
/** The base class of every error c2d raises; `err.code` says its kind. */
export declare class C2DError extends Error {
    /** The kind of error, stable across versions. */
    readonly code: ErrorCode;
    /** Whether retrying the same operation later may succeed. */
    get transient(): boolean;
    constructor(message: string, code?: ErrorCode);
}
declare const InvalidArgumentError_base: {
    new (message: string): {
        readonly code: "C2D_INVALID_ARGUMENT";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** A malformed connection string, option or message: fix the call. */
export declare class InvalidArgumentError extends InvalidArgumentError_base {
}
declare const UnauthorizedError_base: {
    new (message: string): {
        readonly code: "C2D_UNAUTHORIZED";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The hub refused the credentials (a wrong key, an expired token, a policy without the right). */
export declare class UnauthorizedError extends UnauthorizedError_base {
}
declare const DeviceNotFoundError_base: {
    new (message: string): {
        readonly code: "C2D_DEVICE_NOT_FOUND";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** No such device in the hub's registry. */
export declare class DeviceNotFoundError extends DeviceNotFoundError_base {
}
declare const QueueFullError_base: {
    new (message: string): {
        readonly code: "C2D_QUEUE_FULL";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The device's queue holds as many messages as the hub allows. */
export declare class QueueFullError extends QueueFullError_base {
}
declare const MessageTooLargeError_base: {
    new (message: string): {
        readonly code: "C2D_MESSAGE_TOO_LARGE";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The message is larger than the hub accepts. */
export declare class MessageTooLargeError extends MessageTooLargeError_base {
}
declare const ThrottledError_base: {
    new (message: string): {
        readonly code: "C2D_THROTTLED";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The hub is throttling: retry later. */
export declare class ThrottledError extends ThrottledError_base {
}
declare const UnavailableError_base: {
    new (message: string): {
        readonly code: "C2D_UNAVAILABLE";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The hub cannot be reached, or dropped the connection. */
export declare class UnavailableError extends UnavailableError_base {
}
declare const OperationTimeoutError_base: {
    new (message: string): {
        readonly code: "C2D_TIMEOUT";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The operation did not finish in time. */
export declare class OperationTimeoutError extends OperationTimeoutError_base {
}
declare const MessageLockLostError_base: {
    new (message: string): {
        readonly code: "C2D_MESSAGE_LOCK_LOST";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The message's lock ended (or its connection closed) before it was settled; the hub
 * delivers it again. */
export declare class MessageLockLostError extends MessageLockLostError_base {
}
declare const AlreadySettledError_base: {
    new (message: string): {
        readonly code: "C2D_ALREADY_SETTLED";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The delivery was already settled. */
export declare class AlreadySettledError extends AlreadySettledError_base {
}
declare const UnsupportedError_base: {
    new (message: string): {
        readonly code: "C2D_UNSUPPORTED";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The transport cannot do that (MQTT cannot reject or abandon). */
export declare class UnsupportedError extends UnsupportedError_base {
}
declare const ClosedError_base: {
    new (message: string): {
        readonly code: "C2D_CLOSED";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The client was closed. */
export declare class ClosedError extends ClosedError_base {
}
declare const ProtocolError_base: {
    new (message: string): {
        readonly code: "C2D_PROTOCOL";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The hub answered something the protocol does not allow. */
export declare class ProtocolError extends ProtocolError_base {
}
declare const InternalError_base: {
    new (message: string): {
        readonly code: "C2D_INTERNAL";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** A bug of c2d: please report it. */
export declare class InternalError extends InternalError_base {
}
declare const QuotaExceededError_base: {
    new (message: string): {
        readonly code: "C2D_QUOTA_EXCEEDED";
        /** Whether retrying the same operation later may succeed. */
        get transient(): boolean;
        name: string;
        message: string;
        stack?: string;
        cause?: unknown;
    };
    captureStackTrace(targetObject: object, constructorOpt?: Function): void;
    prepareStackTrace(err: Error, stackTraces: NodeJS.CallSite[]): any;
    stackTraceLimit: number;
};
/** The hub's daily message quota is used up (IoT Hub 403002): retrying within the day does
 * not help; wait for the quota to reset (00:00 UTC) or add units. */
export declare class QuotaExceededError extends QuotaExceededError_base {
}
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
/** A retry policy of your own: the milliseconds to wait before retry number `attempt` (1 for
 * the first) after the transient `error`, or `null` to give up. */
export type RetryFunction = (attempt: number, error: C2DError) => number | null | undefined;
/** How connecting and operations are retried after a transient error (errors that retrying
 * cannot fix are never retried). */
export declare class RetryPolicy {
    /** @internal */
    readonly native: native.RetryPolicy;
    private constructor();
    /** Never retry. */
    static none(): RetryPolicy;
    /** The same wait every time; at most `maxRetries` retries (absent: no limit). */
    static fixed(intervalMs: number, options?: {
        maxRetries?: number;
    }): RetryPolicy;
    /** Waits that double from `initialMs` (100) up to `maxMs` (10 000), each shortened by a
     * random part of up to `jitter` (0.25) of itself; at most `maxRetries` retries (absent: no
     * limit). The default policy. */
    static exponentialBackoff(options?: {
        initialMs?: number;
        maxMs?: number;
        jitter?: number;
        maxRetries?: number;
    }): RetryPolicy;
    /** A policy of your own (see {@link RetryFunction}). It runs on the JavaScript thread while
     * the engine waits for its answer: keep it quick. If it throws, or answers something that
     * is not a number, retrying stops (a thrown error is reported as a process warning). */
    static custom(decide: RetryFunction): RetryPolicy;
    /** How it was made. */
    toString(): string;
}
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
export declare class Message {
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
    constructor(body: Buffer | Uint8Array | string, options?: MessageOptions);
    /** @internal */
    toNative(): native.OutgoingMessage;
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
export declare const ReceivedMessage: abstract new () => ReceivedMessage;
/** A client's connection status: its state, and why when it is disconnected. */
export interface ConnectionStatus {
    /** The state. */
    state: ConnectionState;
    /** Why, when disconnected. */
    reason: string | null;
}
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
export declare class DeviceClient extends EventEmitter<DeviceClientEvents> {
    #private;
    /** @internal */
    private constructor();
    /** Connects to the hub of `connectionString` (a device's, as the registry gives it),
     * retrying as the retry policy says; `signal` abandons the attempt. */
    static connect(connectionString: string, options?: DeviceClientOptions): Promise<DeviceClient>;
    /** The next message, waiting at most `timeoutMs` (absent: as long as it takes); `null`
     * when the time is up. Rejects with `ClosedError` once the client is closed, with the
     * error that ended the connection for good, and with the signal's reason when `signal`
     * aborts (taking no message). */
    receive(options?: {
        timeoutMs?: number;
    } & AbortOptions): Promise<ReceivedMessage | null>;
    /** Every message from now on; the iteration ends when the client is closed, throws the
     * error that ended the connection for good, and throws the signal's reason when `signal`
     * aborts (taking no message). */
    messages(options?: AbortOptions): AsyncGenerator<ReceivedMessage, void, undefined>;
    /** The same as {@link messages}. */
    [Symbol.asyncIterator](): AsyncGenerator<ReceivedMessage, void, undefined>;
    /** The transport. */
    get transport(): Transport;
    /** How many duplicates were settled without being handed over (with
     * `suppressDuplicates`). */
    get duplicatesSuppressed(): number;
    /** The connection's status now. */
    get status(): ConnectionStatus;
    /** The status changes from now on; the iteration ends with the disconnected one (the
     * client closed, or given up on for good). */
    statusChanges(): AsyncGenerator<ConnectionStatus, void, undefined>;
    /** Whether {@link close} was called. */
    get closed(): boolean;
    /** Disconnects, after the settlements already made have reached the hub. Messages not
     * settled go back to the hub's queue. Closing twice does nothing. */
    close(): Promise<void>;
}
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
/** A message the hub accepted, whose own outcome can be awaited. */
export declare class SentMessage {
    #private;
    /** @internal */
    constructor(sent: native.SentMessage);
    /** The message's id (generated when the message had none). */
    get messageId(): string;
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
    outcome(options?: {
        timeoutMs?: number;
    } & AbortOptions): Promise<FeedbackRecord>;
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
/** The identity registry of a service client's hub (the policy needs the registry rights:
 * `iothubowner` has them). */
export declare class Registry {
    #private;
    /** @internal */
    constructor(registry: native.Registry);
    /** Registers a device with keys the hub generates. */
    createDevice(deviceId: string, options?: AbortOptions): Promise<Device>;
    /** A device; rejects with `DeviceNotFoundError` when there is none. */
    getDevice(deviceId: string, options?: AbortOptions): Promise<Device>;
    /** Up to `top` (1000) devices. */
    listDevices(options?: {
        top?: number;
    } & AbortOptions): Promise<Device[]>;
    /** Deletes a device and its queue. */
    deleteDevice(deviceId: string, options?: AbortOptions): Promise<void>;
}
/**
 * A back end's connection to its hub: send messages to devices, read their outcomes (each
 * message's own, or the whole feedback stream), purge a device's queue, and manage the
 * registry.
 */
export declare class ServiceClient {
    #private;
    /** The registry of the client's hub. */
    readonly registry: Registry;
    /** @internal */
    private constructor();
    /** Connects to the hub of `connectionString` (a shared access policy's), retrying as the
     * retry policy says. */
    static connect(connectionString: string, options?: ServiceClientOptions): Promise<ServiceClient>;
    /** Sends a message (a {@link Message}, or a body) to a device; resolves once the hub has
     * accepted it (stored it durably). Sends made together are in flight together. */
    send(deviceId: string, message: Message | Buffer | Uint8Array | string, options?: AbortOptions): Promise<SentMessage>;
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
    sendMany(devices: Iterable<string> | AsyncIterable<string>, message: Message | Buffer | Uint8Array | string, options?: SendManyOptions): SendMany;
    /** Every feedback record from now on (from this call: each call follows the stream on
     * its own); the iteration ends when the client is closed, and throws the signal's reason
     * when `signal` aborts (taking no record). */
    feedback(options?: AbortOptions): AsyncGenerator<FeedbackRecord, void, undefined>;
    /** Removes every message queued for a device; resolves to how many. */
    purge(deviceId: string, options?: AbortOptions): Promise<number>;
    /** The connection's status now. */
    get status(): ConnectionStatus;
    /** The status changes from now on; the iteration ends with the disconnected one (the
     * client closed, or given up on for good). */
    statusChanges(): AsyncGenerator<ConnectionStatus, void, undefined>;
    /** Closes the connection; waiting calls end with `ClosedError`. Closing twice does
     * nothing. */
    close(): Promise<void>;
}
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
/** A {@link ServiceClient.sendMany} run: an async iterable of each device's
 * {@link SendResult}, iterated once. */
export declare class SendMany implements AsyncIterable<SendResult> {
    #private;
    /** @internal */
    constructor(run: native.SendMany, devices: Iterable<string> | AsyncIterable<string>, signal: AbortSignal | undefined);
    /** What the run did so far; final once the iteration has ended. */
    get summary(): FanOutSummary;
    /** Starts no new send; those in flight are still reported, then the iteration ends. */
    stop(): void;
    [Symbol.asyncIterator](): AsyncGenerator<SendResult, void, undefined>;
}
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
export declare class LocalHub {
    #private;
    /** @internal */
    private constructor();
    /** Starts a hub. */
    static start(options?: LocalHubOptions): Promise<LocalHub>;
    /** The host name in the hub's connection strings. */
    get hostName(): string;
    /** The MQTT port. */
    get mqttPort(): number;
    /** The AMQP port. */
    get amqpPort(): number;
    /** The HTTPS (and WebSocket) port. */
    get httpsPort(): number;
    /** The PEM of the hub's development CA, which clients must trust. */
    get caPem(): string;
    /** The file holding that CA. */
    get caFile(): string;
    /** The data directory. */
    get dataDir(): string;
    /** The `service` policy's connection string (send, feedback, purge). */
    get serviceConnectionString(): string;
    /** The `iothubowner` policy's connection string (everything, the registry too). */
    get ownerConnectionString(): string;
    /**
     * The address of the hub's live page (devices, queues, feedback) with the token that opens
     * it, new at every start; the token also reads `/metrics` as `Authorization: Bearer …`.
     */
    get uiUrl(): string;
    /** What a service client needs to reach this hub: its CA and ports. */
    serviceOptions(): ServiceClientOptions;
    /** What a device client needs to reach this hub: its CA and ports. */
    deviceOptions(): DeviceClientOptions;
    /** Registers a device; resolves to its connection string. */
    createDevice(deviceId: string): Promise<string>;
    /** Registers an X.509 device (`selfSigned`) with a new self-signed certificate, valid for
     * a year: connect with `DeviceClient.connect(id.connectionString, { cert: id.certPem,
     * key: id.keyPem, … })`. */
    createX509Device(deviceId: string): Promise<X509Identity>;
    /** Throttles as an IoT hub of `tier` with `units` from now on (`null`: no longer). */
    setThrottling(tier: 'F1' | 'S1' | 'S2' | 'S3' | null, units?: number, backlogMs?: number): void;
    /** Requests the hub refused for `reason` since it started (`throttled`, …), as `/metrics`
     * counts them. */
    refusals(reason: string): number;
    /** How many messages are queued for a device (locked ones included). */
    queueDepth(deviceId: string): number;
    /** Moves the manual clock forward by `ms` (the hub must have been started with
     * `manualClock: true`). */
    advanceClock(ms: number): void;
    /** Faults on demand: drop connections, lose acknowledgements, delay deliveries, stall the
     * store, refuse sends, expire locks. */
    get faults(): Faults;
    /** Stops the hub (its clients see the connection end) and removes a temporary data
     * directory. Stopping twice does nothing. */
    stop(): Promise<void>;
}
/** A fault in force, as `Faults.active()` lists it. */
export type ActiveFault = {
    fault: 'lose-acks';
    device: string;
    count: number;
} | {
    fault: 'delay';
    device: string;
    delay_ms: number;
} | {
    fault: 'stall-store';
    for_ms: number;
} | {
    fault: 'refuse-sends';
    error: SendRefusal;
    count?: number;
    for_ms?: number;
};
/** The IoT Hub error a refused send gets: `throttled` (429001, `ThrottledError`), `busy`
 * (503001, `UnavailableError`), `quota` (403002, `QuotaExceededError`). */
export type SendRefusal = 'throttled' | 'busy' | 'quota';
/** Faults on demand in a running `LocalHub` (`hub.faults`): the hub misbehaves the way IoT
 * Hub, or the network in front of it, can — for real, over the wire, so every client sees
 * it. Each is logged by the hub, counted in its `/metrics` (`c2d_hub_faults_total`) and shown
 * on its live page while it lasts; `c2d hub fault …` does the same to a running `c2d hub`. */
export declare class Faults {
    #private;
    /** @internal */
    constructor(hub: native.LocalHub);
    /** Ends the device's connections now, the way a network drop looks (no DISCONNECT or close
     * frame), or with the protocol's close when `polite`; the messages they held locked go back
     * to the queue and the device reconnects by itself. Returns how many ended (HTTPS devices
     * hold none). */
    dropConnections(deviceId: string, options?: {
        polite?: boolean;
    }): number;
    /** Ends every device connection over `transport` (`'mqtt'`, `'mqtt_ws'`, `'amqp'`,
     * `'amqp_ws'`); returns how many. */
    dropTransport(transport: Transport, options?: {
        polite?: boolean;
    }): number;
    /** Loses the device's next `count` acknowledgements (complete, reject, abandon), as a
     * PUBACK lost on the way is: the message stays locked until its lock runs out (or
     * `expireLocks()`), then comes again. */
    loseAcks(deviceId: string, count?: number): void;
    /** Holds every delivery to the device for `ms` before it is sent, until `clear()`. */
    delayDeliveries(deviceId: string, ms: number): void;
    /** Holds the hub's store commits for `ms`, as a slow disk would: sends wait for their
     * answer (unless their device completes them first), nothing is lost. */
    stallStore(ms: number): void;
    /** Refuses C2D sends with one of IoT Hub's errors: the next `count`, or all for `ms`. */
    refuseSends(error: SendRefusal, options: {
        count?: number;
        ms?: number;
    }): void;
    /** Ends every message lock now, as if each had run out: the messages come again. Returns
     * how many. */
    expireLocks(): number;
    /** Ends every fault in force. */
    clear(): void;
    /** The faults in force, with what is left of each. */
    active(): ActiveFault[];
    /** Acknowledgements lost to `loseAcks()` since the hub started. */
    get acksLost(): number;
}
/** The version of the package and its engine. */
export declare const version: string;
export {};
