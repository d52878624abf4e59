/**
 * @file c2d.h
 * @mainpage c2d: Azure IoT Hub cloud-to-device messaging for C
 *
 * libc2d lets a device receive the cloud-to-device (C2D) messages IoT Hub queues for it and
 * settle each one (complete, reject, abandon); lets a back-end send them, read their delivery
 * feedback, purge a queue and register devices; and runs a local IoT-Hub-compatible hub in
 * the process, so that all of it works and can be tested without a cloud.
 *
 * @section start Getting started
 *
 * Build and install: `make install PREFIX=/usr/local`, then
 * `cc app.c $(pkg-config --cflags --libs c2d)`. A device that completes every message:
 *
 * @code{.c}
 * #include <c2d.h>
 *
 * c2d_device_options *opts = NULL;
 * c2d_device_client *device = NULL;
 * if (c2d_device_options_new(&opts) != C2D_RESULT_OK ||
 *     c2d_device_options_set_transport(opts, C2D_TRANSPORT_AMQP) != C2D_RESULT_OK ||
 *     c2d_device_client_connect(connection_string, opts, &device) != C2D_RESULT_OK) {
 *     char why[256];
 *     c2d_last_error_message(why, sizeof why);
 *     fprintf(stderr, "cannot connect: %s
", why);
 *     ...
 * }
 * c2d_device_options_free(opts);
 * for (;;) {
 *     c2d_message *msg = NULL;
 *     c2d_result r = c2d_device_client_receive(device, C2D_TIMEOUT_INFINITE, &msg);
 *     if (r != C2D_RESULT_OK) break;            // C2D_RESULT_CLOSED once closed
 *     const uint8_t *body; size_t len;
 *     if (c2d_message_body(msg, &body, &len) == C2D_RESULT_OK && handle(body, len))
 *         r = c2d_message_complete(msg);
 *     else
 *         r = c2d_message_reject(msg);           // dead-letter: Rejected feedback
 *     c2d_message_free(msg);                     // settling does not free
 * }
 * (void)c2d_device_client_free(device);
 * @endcode
 *
 * A back-end: `c2d_service_client_connect`, `c2d_message_new` with `c2d_message_set_ack`,
 * `c2d_service_client_send`, then `c2d_sent_message_wait_outcome` for that message's own
 * feedback or `c2d_service_client_feedback_receive` for every record. Without a cloud,
 * `c2d_hub_start` runs a local hub: `c2d_hub_text` gives its CA and connection strings,
 * `c2d_hub_ports` its ports, `c2d_hub_create_device` registers devices. See examples/c/.
 *
 * @section results Results and errors
 *
 * Every function that can fail returns a `c2d_result`: `C2D_RESULT_OK` (0) or one code per
 * kind of error, each telling the caller what to do (`C2D_RESULT_QUEUE_FULL`: wait for the
 * device; `C2D_RESULT_UNAVAILABLE`: retry later; ...). `c2d_result_str()` names a code;
 * `c2d_last_error_message()` gives the full message of the last failure on the calling
 * thread. Results are marked `C2D_NODISCARD`. A NULL where an argument is needed gives
 * `C2D_RESULT_INVALID_ARGUMENT`. No function aborts the process: a panic inside c2d becomes
 * `C2D_RESULT_PANIC`. Out-parameters (`out_*`) are written only on success.
 *
 * @section ownership Ownership
 *
 * Objects are opaque handles, each made by a `_new`, `_connect` or `_start` function (or
 * handed out by one, like a received message) and freed exactly once by its own `_free`;
 * `_free(NULL)` does nothing. Options objects (`c2d_device_options`, `c2d_service_options`,
 * `c2d_hub_options`) and retry policies are copied by the calls that take them and can be
 * freed right after. Strings and buffers a getter returns belong to the object they came from
 * and live as long as it does. Strings returned for the caller to own (connection strings of
 * new devices) are freed with `c2d_string_free`. Settling a message does not free it.
 * Arguments are copied; nothing keeps a pointer the caller gave, except `user_data`.
 *
 * @section threading Threading
 *
 * Clients and hubs may be used from any thread, concurrently; `_free` must be the last call
 * on an object. Messages, records and options must not be changed by two threads at once.
 * Blocking functions wait on c2d's own runtime (two threads named `c2d`, started on first
 * use). A device client's callbacks (`c2d_device_options_set_message_callback`,
 * `c2d_device_options_set_connection_status_callback`) run serially on one library thread
 * per client, take `user_data` first, and must not block for long; after
 * `c2d_device_client_close` or `_free` returns, none is running. A callback may settle and
 * free its message and may close its own client, but `c2d_device_client_free` from inside
 * it fails with `C2D_RESULT_INVALID_ARGUMENT` (it cannot wait for itself): free the client
 * from another thread. That is why `c2d_device_client_free` returns a `c2d_result` while
 * the other `_free` functions return nothing. A process that forks must make new clients in
 * the child.
 *
 * @section versions Versions
 *
 * `C2D_VERSION_MAJOR`, `_MINOR` and `_PATCH` give the header's version; `c2d_version()`
 * the loaded library's.
 */


#ifndef C2D_H
#define C2D_H

/* Generated from ffi/ by `make header` (cbindgen 0.29.4). Do not edit. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__cplusplus) && __cplusplus >= 201703L
#define C2D_NODISCARD [[nodiscard]]
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ > 201710L
#define C2D_NODISCARD [[nodiscard]]
#elif defined(__GNUC__) || defined(__clang__)
#define C2D_NODISCARD __attribute__((warn_unused_result))
#else
#define C2D_NODISCARD
#endif

/* The local hub (c2d_hub_*) is in the library unless it was built without it
 * (`make install HUB=0`, whose c2d.pc then adds -DC2D_NO_HUB). */
#if !defined(C2D_NO_HUB) && !defined(C2D_HUB)
#define C2D_HUB
#endif

/* The service client (c2d_service_*) likewise, unless the library was built without it
 * (`make install HUB=0 TRANSPORTS=...` without both amqp and https adds -DC2D_NO_SERVICE). */
#if !defined(C2D_NO_SERVICE) && !defined(C2D_SERVICE)
#define C2D_SERVICE
#endif

/**
 * `max_retries` value that means "retry without end".
 */
#define C2D_RETRIES_UNLIMITED UINT32_MAX

/**
 * `timeout_ms` value that means "wait as long as it takes".
 */
#define C2D_TIMEOUT_INFINITE UINT32_MAX

/**
 * The major version of the header (`C2D_VERSION_MAJOR`).
 */
#define C2D_VERSION_MAJOR 0

/**
 * The minor version of the header.
 */
#define C2D_VERSION_MINOR 1

/**
 * The patch version of the header.
 */
#define C2D_VERSION_PATCH 0

/**
 * What a c2d function did: `C2D_RESULT_OK` (0), or why it failed. One code per error kind of
 * the engine, each telling the caller what to do, plus `C2D_RESULT_PANIC`.
 */
enum c2d_result
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Success.
   */
  C2D_RESULT_OK = 0,
  /**
   * The call itself is wrong (a NULL or malformed argument, a bad connection string or
   * option): fix the call.
   */
  C2D_RESULT_INVALID_ARGUMENT = 1,
  /**
   * The credentials were refused or lack the right: fix the credentials.
   */
  C2D_RESULT_UNAUTHORIZED = 2,
  /**
   * The device is not registered in the hub: register it.
   */
  C2D_RESULT_DEVICE_NOT_FOUND = 3,
  /**
   * The device's queue is full: wait for the device to drain it.
   */
  C2D_RESULT_QUEUE_FULL = 4,
  /**
   * The message is larger than the hub accepts: send less.
   */
  C2D_RESULT_MESSAGE_TOO_LARGE = 5,
  /**
   * The hub throttled the request: slow down.
   */
  C2D_RESULT_THROTTLED = 6,
  /**
   * The hub could not be reached or is not serving now: retry later.
   */
  C2D_RESULT_UNAVAILABLE = 7,
  /**
   * The operation did not finish in time (or nothing arrived within the timeout): retry
   * or give up.
   */
  C2D_RESULT_TIMEOUT = 8,
  /**
   * The message's lock expired or was lost with its connection: expect a redelivery.
   */
  C2D_RESULT_MESSAGE_LOCK_LOST = 9,
  /**
   * The message was already completed, rejected or abandoned: fix the code path.
   */
  C2D_RESULT_ALREADY_SETTLED = 10,
  /**
   * The transport cannot do this (reject or abandon over MQTT): use another transport.
   */
  C2D_RESULT_UNSUPPORTED = 11,
  /**
   * The client or hub was closed: make a new one.
   */
  C2D_RESULT_CLOSED = 12,
  /**
   * The peer broke the protocol: report the peer.
   */
  C2D_RESULT_PROTOCOL = 13,
  /**
   * A bug in c2d: report it.
   */
  C2D_RESULT_INTERNAL = 14,
  /**
   * c2d panicked inside this call (a bug: report it). The process was not aborted, but the
   * object the call was given may be unusable; free it.
   */
  C2D_RESULT_PANIC = 15,
  /**
   * The hub's daily message quota is used up (IoT Hub 403002): not transient within the
   * day; wait for the quota to reset (00:00 UTC) or add units.
   */
  C2D_RESULT_QUOTA_EXCEEDED = 16,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum c2d_result c2d_result;
#else
typedef uint32_t c2d_result;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Where a client's connection stands.
 */
enum c2d_connection_status
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Connected and authorized.
   */
  C2D_CONNECTION_STATUS_CONNECTED = 0,
  /**
   * Not connected; the reason says why.
   */
  C2D_CONNECTION_STATUS_DISCONNECTED = 1,
  /**
   * Trying to connect again.
   */
  C2D_CONNECTION_STATUS_RECONNECTING = 2,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum c2d_connection_status c2d_connection_status;
#else
typedef uint32_t c2d_connection_status;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

#if defined(C2D_SERVICE)
/**
 * The outcome a feedback record reports.
 */
enum c2d_feedback_status
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
#if defined(C2D_SERVICE)
  /**
   * The device completed the message.
   */
  C2D_FEEDBACK_STATUS_SUCCESS = 0,
#endif
#if defined(C2D_SERVICE)
  /**
   * The message's time to live passed before it was completed.
   */
  C2D_FEEDBACK_STATUS_EXPIRED = 1,
#endif
#if defined(C2D_SERVICE)
  /**
   * The message was abandoned as many times as the hub allows.
   */
  C2D_FEEDBACK_STATUS_DELIVERY_COUNT_EXCEEDED = 2,
#endif
#if defined(C2D_SERVICE)
  /**
   * The device rejected the message.
   */
  C2D_FEEDBACK_STATUS_REJECTED = 3,
#endif
#if defined(C2D_SERVICE)
  /**
   * The device's queue was purged.
   */
  C2D_FEEDBACK_STATUS_PURGED = 4,
#endif
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum c2d_feedback_status c2d_feedback_status;
#else
typedef uint32_t c2d_feedback_status;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus
#endif

/**
 * A device's connection to its hub.
 *
 * Made by `c2d_device_client_connect`, freed by `c2d_device_client_free`. Every function
 * may be called from any thread, concurrently, except `_free`, which must be the last call.
 */
typedef struct c2d_device_client c2d_device_client;

/**
 * Options for `c2d_device_client_connect`: made by `c2d_device_options_new`, changed by the
 * setters, copied by the connect call, freed by `c2d_device_options_free`.
 */
typedef struct c2d_device_options c2d_device_options;

#if defined(C2D_SERVICE)
/**
 * How `c2d_service_client_send_many` sends: made by `c2d_fan_out_options_new`, changed by
 * the setters, copied by the call, freed by `c2d_fan_out_options_free`.
 */
typedef struct c2d_fan_out_options c2d_fan_out_options;
#endif

#if defined(C2D_SERVICE)
/**
 * One feedback record. Owned by the caller, freed with `c2d_feedback_record_free`; its
 * strings belong to it.
 */
typedef struct c2d_feedback_record c2d_feedback_record;
#endif

#if defined(C2D_HUB)
/**
 * A running local hub. Made by `c2d_hub_start`, stopped by `c2d_hub_stop`, freed by
 * `c2d_hub_free`. Every function may be called from any thread, except `_free`, which must
 * be the last call.
 */
typedef struct c2d_hub c2d_hub;
#endif

#if defined(C2D_HUB)
/**
 * Options for `c2d_hub_start`: made by `c2d_hub_options_new`, changed by the setters,
 * copied by `c2d_hub_start`, freed by `c2d_hub_options_free`.
 */
typedef struct c2d_hub_options c2d_hub_options;
#endif

/**
 * A cloud-to-device message: a body, system properties and application properties.
 *
 * Made by `c2d_message_new` (to send) or by a device client (received; these can also be
 * settled). Owned by the caller and freed with `c2d_message_free`; settling does not free.
 * Strings and buffers returned by the accessors belong to the message and stay valid until
 * it is freed or (for messages to send) changed by a setter.
 */
typedef struct c2d_message c2d_message;

/**
 * A retry policy: how long to wait before trying again, and when to give up. Errors that
 * retrying cannot fix (unauthorized, device not found, queue full, too large) are never
 * retried, whatever the policy. Give it to `c2d_device_options_set_retry` or
 * `c2d_service_options_set_retry`, which copy it; free it with `c2d_retry_policy_free`.
 */
typedef struct c2d_retry_policy c2d_retry_policy;

#if defined(C2D_SERVICE)
/**
 * A sent message: its id, and a way to wait for its own feedback record.
 * Owned by the caller, freed with `c2d_sent_message_free`.
 */
typedef struct c2d_sent_message c2d_sent_message;
#endif

#if defined(C2D_SERVICE)
/**
 * A back-end's connection to the hub: sends, feedback, purge and the device registry.
 *
 * Made by `c2d_service_client_connect`, freed by `c2d_service_client_free`. Every function
 * may be called from any thread, concurrently, except `_free`, which must be the last call.
 */
typedef struct c2d_service_client c2d_service_client;
#endif

#if defined(C2D_SERVICE)
/**
 * Options for `c2d_service_client_connect`: made by `c2d_service_options_new`, changed by
 * the setters, copied by the connect call, freed by `c2d_service_options_free`.
 */
typedef struct c2d_service_options c2d_service_options;
#endif

/**
 * How a device client talks to the hub.
 */
typedef uint32_t c2d_transport;

/**
 * Receives a message on the client's callback thread.
 *
 * @param user_data The pointer given with the callback.
 * @param message The message, now owned by the callback: settle it (here or on any other
 *                thread) and free it with `c2d_message_free`.
 *
 * Called serially on one library thread per client; it should return quickly (the next
 * message waits for it). It may settle and free the message, and may call
 * `c2d_device_client_close` on its own client, but not `c2d_device_client_free`.
 */
typedef void (*c2d_message_callback)(void *user_data,
                                     struct c2d_message *message);

/**
 * Receives a connection status change on the client's callback thread.
 *
 * @param user_data The pointer given with the callback.
 * @param status The new status.
 * @param reason Why, for `C2D_CONNECTION_STATUS_DISCONNECTED` (NULL otherwise); valid only
 *               during the call.
 *
 * Called first with the status at connect (`C2D_CONNECTION_STATUS_CONNECTED`), then on each
 * change (a connection lost for good, say with refused credentials, ends with
 * `C2D_CONNECTION_STATUS_DISCONNECTED` and the reason), serially with the message callback on
 * the same thread; must return quickly.
 */
typedef void (*c2d_connection_status_callback)(void *user_data,
                                               c2d_connection_status status,
                                               const char *reason);

#if defined(C2D_HUB)
/**
 * How the hub's store commits.
 */
typedef uint32_t c2d_durability;
#endif

#if defined(C2D_SERVICE)
/**
 * An IoT Hub tier, for `c2d_fan_out_options_set_tier` and `c2d_hub_options_set_tier`.
 */
typedef uint32_t c2d_tier;
#endif

#if defined(C2D_HUB)
/**
 * What `c2d_hub_text` reads.
 */
typedef uint32_t c2d_hub_text_kind;
#endif

#if defined(C2D_HUB)
/**
 * The IoT Hub error `c2d_hub_fault_refuse_sends` answers sends with.
 */
typedef uint32_t c2d_send_refusal;
#endif

/**
 * Which outcomes of a sent message produce a feedback record (`iothub-ack`).
 */
typedef uint32_t c2d_ack;

/**
 * Decides a retry of a custom policy.
 *
 * @param user_data The pointer given to `c2d_retry_policy_custom_new`.
 * @param retry The retry number: 1 for the first retry.
 * @param error Why the last attempt failed (always a transient error).
 * @param out_delay_ms Where to write how long to wait before the retry.
 * @return true to retry after `*out_delay_ms`, false to give up with `error`.
 *
 * Runs on one of c2d's runtime threads: it must return quickly, and must not call c2d
 * functions that wait (they fail with `C2D_RESULT_INVALID_ARGUMENT` there).
 */
typedef bool (*c2d_retry_callback)(void *user_data,
                                   uint32_t retry,
                                   c2d_result error,
                                   uint32_t *out_delay_ms);

#if defined(C2D_SERVICE)
/**
 * How a service client talks to the hub.
 */
typedef uint32_t c2d_service_transport;
#endif

#if defined(C2D_SERVICE)
/**
 * Called once per device by `c2d_service_client_send_many`, on the calling thread:
 * `context` as given; the device's id; `C2D_RESULT_OK` and the sent message (owned by the
 * callback: wait on its outcome, keep it, or free it with `c2d_sent_message_free`), or the
 * failure's result, `sent` NULL, and `message` saying why. `device_id` and `message` are
 * valid during the call. Return 0 to go on, anything else to start no new send (those in
 * flight are still reported). The callback must not call `c2d_service_client_send_many`
 * on the same client.
 */
typedef int (*c2d_send_many_callback)(void *context,
                                      const char *device_id,
                                      c2d_result result,
                                      struct c2d_sent_message *sent,
                                      const char *message);
#endif

#if defined(C2D_SERVICE)
/**
 * What a `c2d_service_client_send_many` did.
 */
typedef struct c2d_fan_out_summary {
  /**
   * Devices whose message the hub took.
   */
  uint64_t sent;
  /**
   * Devices whose message it did not take.
   */
  uint64_t failed;
  /**
   * Of those, how many failed with each result (indexed by its `c2d_result` value; room
   * for the codes to come).
   */
  uint64_t failed_by_result[32];
  /**
   * Attempts made again after a throttling or transient error.
   */
  uint64_t retried;
  /**
   * Attempts the hub refused as throttled (retried or not).
   */
  uint64_t throttled;
  /**
   * Milliseconds from the call to the last result.
   */
  uint64_t elapsed_ms;
  /**
   * `C2D_RESULT_OK`, or what ended the run before its last device
   * (`C2D_RESULT_UNAUTHORIZED`, `C2D_RESULT_QUOTA_EXCEEDED`, `C2D_RESULT_CLOSED`): the
   * devices after it were not tried.
   */
  c2d_result stopped;
  /**
   * Whether the callback ended the run early (the devices after were not tried).
   */
  bool cancelled;
} c2d_fan_out_summary;
#endif

/**
 * MQTT 3.1.1 over TLS, port 8883 (the default).
 */
#define C2D_TRANSPORT_MQTT 0

/**
 * MQTT over WebSockets over TLS, port 443.
 */
#define C2D_TRANSPORT_MQTT_WS 1

/**
 * AMQP 1.0 over TLS, port 5671 (with HTTPS, the transports that can reject and abandon).
 */
#define C2D_TRANSPORT_AMQP 2

/**
 * AMQP over WebSockets over TLS, port 443.
 */
#define C2D_TRANSPORT_AMQP_WS 3

/**
 * HTTPS polling, port 443: every settlement; messages arrive when the client polls (at
 * connect, then every poll interval, 25 minutes by default: see
 * `c2d_device_options_set_poll_interval_ms`).
 */
#define C2D_TRANSPORT_HTTPS 4

#if defined(C2D_HUB)
/**
 * Every commit waits for the disk (`fsync`): an accepted message survives a crash and a
 * power loss. The default.
 */
#define C2D_DURABILITY_FSYNC 0
#endif

#if defined(C2D_HUB)
/**
 * Commits reach the OS, not the disk: an accepted message survives a crash of the hub, not a
 * power loss; faster.
 */
#define C2D_DURABILITY_OS 1
#endif

#if defined(C2D_HUB)
/**
 * The host name clients must dial (and that the certificate names): `localhost`.
 */
#define C2D_HUB_TEXT_HOST_NAME 0
#endif

#if defined(C2D_HUB)
/**
 * The dev CA certificate, PEM: give it to `c2d_*_options_set_trusted_ca_pem`.
 */
#define C2D_HUB_TEXT_CA_PEM 1
#endif

#if defined(C2D_HUB)
/**
 * The path of the dev CA file (`ca.pem` in the data directory).
 */
#define C2D_HUB_TEXT_CA_PATH 2
#endif

#if defined(C2D_HUB)
/**
 * The connection string of the `service` policy (ServiceConnect: send, feedback, purge).
 */
#define C2D_HUB_TEXT_SERVICE_CONNECTION_STRING 3
#endif

#if defined(C2D_HUB)
/**
 * The connection string of the `iothubowner` policy (every right, registry writes too).
 */
#define C2D_HUB_TEXT_OWNER_CONNECTION_STRING 4
#endif

#if defined(C2D_HUB)
/**
 * The address of the hub's live page (devices, queues, feedback) with the token that opens
 * it, new at every start: `https://localhost:{port}/ui/?token=…`. The token also reads
 * `/metrics` as `Authorization: Bearer {token}`.
 */
#define C2D_HUB_TEXT_UI_URL 5
#endif

#if defined(C2D_HUB)
/**
 * 429001 ThrottlingException (`C2D_RESULT_THROTTLED` to c2d's clients, retried).
 */
#define C2D_SEND_REFUSAL_THROTTLED 0
#endif

#if defined(C2D_HUB)
/**
 * 503001 ServiceUnavailable, server busy (`C2D_RESULT_UNAVAILABLE`, retried).
 */
#define C2D_SEND_REFUSAL_BUSY 1
#endif

#if defined(C2D_HUB)
/**
 * 403002 IotHubQuotaExceeded, the daily message quota used up (`C2D_RESULT_QUOTA_EXCEEDED`,
 * not retried).
 */
#define C2D_SEND_REFUSAL_QUOTA 2
#endif

/**
 * No feedback (the default).
 */
#define C2D_ACK_NONE 0

/**
 * Feedback when the device completes the message (`Success`).
 */
#define C2D_ACK_POSITIVE 1

/**
 * Feedback when the message fails (`Rejected`, `Expired`, `DeliveryCountExceeded`, `Purged`).
 */
#define C2D_ACK_NEGATIVE 2

/**
 * Feedback for every outcome.
 */
#define C2D_ACK_FULL 3

#if defined(C2D_SERVICE)
/**
 * AMQP 1.0 over TLS, port 5671 (the default).
 */
#define C2D_SERVICE_TRANSPORT_AMQP 0
#endif

#if defined(C2D_SERVICE)
/**
 * AMQP over WebSockets over TLS, port 443.
 */
#define C2D_SERVICE_TRANSPORT_AMQP_WS 1
#endif

#if defined(C2D_SERVICE)
/**
 * Free: the S1 throttles, one unit.
 */
#define C2D_TIER_F1 1
#endif

#if defined(C2D_SERVICE)
/**
 * Standard S1: 100 C2D sends a minute a unit.
 */
#define C2D_TIER_S1 2
#endif

#if defined(C2D_SERVICE)
/**
 * Standard S2: as S1 for C2D.
 */
#define C2D_TIER_S2 3
#endif

#if defined(C2D_SERVICE)
/**
 * Standard S3: 5 000 C2D sends a minute a unit.
 */
#define C2D_TIER_S3 4
#endif

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Frees a string that c2d gave to the caller (a device connection string, for example).
 *
 * @param string A string returned by c2d for the caller to own, or NULL (nothing happens).
 *               Passing any other pointer is undefined behaviour.
 *
 * Thread safety: callable from any thread.
 */
void c2d_string_free(char *string);

/**
 * Whether this library carries `transport`: every transport unless it was built for firmware
 * with fewer (`make install TRANSPORTS=mqtt`); connecting with one it lacks is
 * `C2D_RESULT_UNSUPPORTED`. False for a value that is no `c2d_transport`.
 *
 * Thread safety: callable from any thread.
 */
bool c2d_transport_available(c2d_transport transport);

/**
 * Makes device options with every setting at its default.
 *
 * @param out_options Receives the options, owned by the caller (free them with
 *                    `c2d_device_options_free`).
 * @retval C2D_RESULT_OK The options were made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_options` is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_device_options_new(struct c2d_device_options **out_options);

/**
 * Frees device options. Clients connected with them keep their own copy.
 *
 * @param options The options, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once per options object.
 */
void c2d_device_options_free(struct c2d_device_options *options);

/**
 * Chooses the transport (`C2D_TRANSPORT_MQTT` by default).
 *
 * @param options The options.
 * @param transport One of the `C2D_TRANSPORT_*` values.
 * @retval C2D_RESULT_OK The transport was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `transport` is not a transport.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_transport(struct c2d_device_options *options,
                                            c2d_transport transport);

/**
 * Trusts the CA certificates in `pem` (for example a local hub's dev CA) instead of the
 * system's roots.
 *
 * @param options The options.
 * @param pem PEM text of one or more certificates (copied).
 * @param pem_len Its length in bytes.
 * @retval C2D_RESULT_OK The CA was set (it is parsed at connect).
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `pem_len` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_trusted_ca_pem(struct c2d_device_options *options,
                                                 const uint8_t *pem,
                                                 size_t pem_len);

/**
 * Trusts the CA certificates in the PEM file at `path` instead of the system's roots.
 *
 * @param options The options.
 * @param path The file's path; it is read now.
 * @retval C2D_RESULT_OK The file was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the file cannot be read or is
 *         empty (the last error message says why).
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_trusted_ca_file(struct c2d_device_options *options,
                                                  const char *path);

/**
 * Authenticates with an X.509 certificate instead of a SAS token (a device registered as
 * `selfSigned`, by the certificate's thumbprint, or `certificateAuthority`, whose certificate
 * chains to a CA registered with the hub and names the device in its common name). Needed
 * with a connection string that says `x509=true`.
 *
 * @param options The options.
 * @param cert_pem The certificate, PEM (leaf first, then any intermediates; copied).
 * @param cert_len Its length in bytes.
 * @param key_pem Its private key, PEM (PKCS#8, PKCS#1 or SEC1; copied).
 * @param key_len Its length in bytes.
 * @retval C2D_RESULT_OK The certificate and key were set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or empty, or the certificate or the
 *         key is not valid PEM (the last error message says which).
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_client_certificate_pem(struct c2d_device_options *options,
                                                         const uint8_t *cert_pem,
                                                         size_t cert_len,
                                                         const uint8_t *key_pem,
                                                         size_t key_len);

/**
 * Hands each message over once: the ids of the messages the application completed or
 * rejected are remembered (the last 10 000, for 48 hours), and one that comes again (its
 * acknowledgement was lost, its connection dropped) is settled the same way without being
 * handed over, counted by `c2d_device_client_duplicates_suppressed`. Messages without a
 * message id are always handed over. Off by default.
 *
 * @param options The options.
 * @param on Whether to suppress duplicates.
 * @retval C2D_RESULT_OK The option was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_suppress_duplicates(struct c2d_device_options *options,
                                                      bool on);

/**
 * Suppresses duplicates (`c2d_device_options_set_suppress_duplicates`) with the window kept
 * in a file too: each id is written before its settlement is sent, so a process killed
 * after handling a message and before its acknowledgement reached the hub does not see it
 * again after a restart. One client at a time per file.
 *
 * @param options The options.
 * @param path The file (made if missing, with its directory).
 * @retval C2D_RESULT_OK The option was set (the file is opened at connect).
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_duplicates_file(struct c2d_device_options *options,
                                                  const char *path);

/**
 * Like `c2d_device_options_set_client_certificate_pem`, from files.
 *
 * @param options The options.
 * @param cert_path The certificate file (PEM); it is read now.
 * @param key_path The key file (PEM); it is read now.
 * @retval C2D_RESULT_OK The files were read and hold a certificate and a key.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, a file cannot be read, or its
 *         contents are not valid PEM (the last error message says why).
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_client_certificate_files(struct c2d_device_options *options,
                                                           const char *cert_path,
                                                           const char *key_path);

/**
 * Reaches the hub through an HTTP proxy (`CONNECT`), which carries the WebSocket and HTTPS
 * transports (`C2D_TRANSPORT_MQTT_WS`, `C2D_TRANSPORT_AMQP_WS`, `C2D_TRANSPORT_HTTPS`;
 * connecting over plain MQTT or AMQP with a proxy fails with `C2D_RESULT_INVALID_ARGUMENT`).
 * No proxy by default: the environment is not read (pass `getenv("HTTPS_PROXY")` to use
 * its proxy).
 *
 * @param options The options.
 * @param url `http://[user:password@]host[:port]` (user and password percent-encoded).
 * @retval C2D_RESULT_OK The proxy was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or the URL is not an HTTP proxy's.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_proxy(struct c2d_device_options *options,
                                        const char *url);

/**
 * Overrides the port of the transport (for a local hub on non-standard ports). The host is
 * the connection string's `GatewayHostName`, else its `HostName`.
 *
 * @param options The options.
 * @param port The TCP port (MQTT: 8883, AMQP: 5671, WebSockets: 443 by default).
 * @retval C2D_RESULT_OK The port was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `port` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_port(struct c2d_device_options *options,
                                       uint16_t port);

/**
 * Sets the retry policy for connecting, reconnecting and operations (exponential back-off
 * with jitter by default).
 *
 * @param options The options.
 * @param policy The policy (copied; the caller keeps and frees it).
 * @retval C2D_RESULT_OK The policy was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_retry(struct c2d_device_options *options,
                                        const struct c2d_retry_policy *policy);

/**
 * Sets how long one attempt at connecting or settling may take (30 s by default).
 *
 * @param options The options.
 * @param timeout_ms The limit in milliseconds (at least 1).
 * @retval C2D_RESULT_OK The timeout was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `timeout_ms` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_timeout_ms(struct c2d_device_options *options,
                                             uint32_t timeout_ms);

/**
 * Sets how long each SAS token the client makes from its key lives (1 hour by default);
 * the client renews it before it expires (MQTT: by reconnecting; AMQP: in band).
 *
 * @param options The options.
 * @param ttl_s The token lifetime in seconds (at least 1).
 * @retval C2D_RESULT_OK The lifetime was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `ttl_s` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_sas_token_ttl_s(struct c2d_device_options *options,
                                                  uint32_t ttl_s);

/**
 * Sets how many received messages may be unsettled at once (16 by default): the hub sends
 * no more until some are settled.
 *
 * @param options The options.
 * @param in_flight The number of messages (at least 1).
 * @retval C2D_RESULT_OK The limit was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `in_flight` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_in_flight(struct c2d_device_options *options,
                                            uint16_t in_flight);

/**
 * Sets how long an HTTPS client waits between polls once the queue is empty (25 minutes by
 * default, IoT Hub's guidance: IoT Hub throttles HTTPS receives, so poll more often only in
 * development). Each poll drains the queue. The other transports ignore it.
 *
 * @param options The options.
 * @param interval_ms The interval in milliseconds (at least 1).
 * @retval C2D_RESULT_OK The interval was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `interval_ms` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_poll_interval_ms(struct c2d_device_options *options,
                                                   uint32_t interval_ms);

/**
 * Delivers messages to `callback` on a library thread instead of through
 * `c2d_device_client_receive` (which then fails with `C2D_RESULT_INVALID_ARGUMENT`).
 *
 * @param options The options.
 * @param callback The callback (see `c2d_message_callback`); must not be NULL.
 * @param user_data Passed to the callback as is; must stay valid until the client is freed.
 * @retval C2D_RESULT_OK The callback was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_message_callback(struct c2d_device_options *options,
                                                   c2d_message_callback callback,
                                                   void *user_data);

/**
 * Reports connection status changes to `callback` on the client's callback thread.
 *
 * @param options The options.
 * @param callback The callback (see `c2d_connection_status_callback`); must not be NULL.
 * @param user_data Passed to the callback as is; must stay valid until the client is freed.
 * @retval C2D_RESULT_OK The callback was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_device_options_set_connection_status_callback(struct c2d_device_options *options,
                                                             c2d_connection_status_callback callback,
                                                             void *user_data);

/**
 * Connects a device to its hub, waiting until it is connected (retrying as the retry policy
 * says), and starts receiving its cloud-to-device messages.
 *
 * @param connection_string The device connection string,
 *        `HostName=...;DeviceId=...;SharedAccessKey=...[;GatewayHostName=...]`, or one with a
 *        `SharedAccessSignature=...` (a token that cannot be renewed).
 * @param options Options, or NULL for the defaults (MQTT, system CAs, standard ports). Copied:
 *                the caller keeps and frees them.
 * @param out_client Receives the client, owned by the caller (free it with
 *                   `c2d_device_client_free`).
 * @retval C2D_RESULT_OK Connected.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the connection string or CA is
 *         malformed.
 * @retval C2D_RESULT_UNAUTHORIZED The hub refused the credentials.
 * @retval C2D_RESULT_DEVICE_NOT_FOUND The device is not registered.
 * @retval C2D_RESULT_UNSUPPORTED The connection string is for a module or X.509.
 * @retval C2D_RESULT_UNAVAILABLE The hub could not be reached (after the retries).
 * @retval C2D_RESULT_TIMEOUT Connecting took longer than the timeout.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_device_client_connect(const char *connection_string,
                                     const struct c2d_device_options *options,
                                     struct c2d_device_client **out_client);

/**
 * Waits up to `timeout_ms` for the next message.
 *
 * @param client The client.
 * @param timeout_ms How long to wait, in milliseconds: 0 to only take a message already
 *                   there, `C2D_TIMEOUT_INFINITE` to wait as long as it takes.
 * @param out_message Receives the message, owned by the caller: settle it with
 *                    `c2d_message_complete` / `_reject` / `_abandon` and free it with
 *                    `c2d_message_free`.
 * @retval C2D_RESULT_OK A message was received.
 * @retval C2D_RESULT_TIMEOUT No message came within `timeout_ms`.
 * @retval C2D_RESULT_CLOSED The client was closed.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the client delivers messages to
 *         a message callback.
 * @retval C2D_RESULT_UNAUTHORIZED The connection was lost for good: credentials refused
 *         (other codes: the retries were exhausted).
 *
 * To stop a thread waiting here, close the client from another thread
 * (`c2d_device_client_close`): the wait ends at once with `C2D_RESULT_CLOSED` and takes no
 * message (the messages not received stay queued at the hub). Free the client only once the
 * waiting thread has returned.
 *
 * Thread safety: callable from any thread; concurrent receivers each get different messages.
 */
C2D_NODISCARD
c2d_result c2d_device_client_receive(const struct c2d_device_client *client,
                                     uint32_t timeout_ms,
                                     struct c2d_message **out_message);

/**
 * Reads the client's connection status now.
 *
 * @param client The client.
 * @param out_status Receives the status.
 * @retval C2D_RESULT_OK The status was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_device_client_connection_status(const struct c2d_device_client *client,
                                               c2d_connection_status *out_status);

/**
 * Reads how many duplicates the client settled without handing them over (with
 * `c2d_device_options_set_suppress_duplicates`; 0 without).
 *
 * @param client The client.
 * @param out_count Receives the count.
 * @retval C2D_RESULT_OK The count was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_device_client_duplicates_suppressed(const struct c2d_device_client *client,
                                                   uint64_t *out_count);

/**
 * Disconnects, after the settlements already made have reached the hub, and stops the
 * callbacks: when it returns, no callback of this client is running (except the one that
 * called it, if it was called from a callback). Messages received and not settled go back to
 * the hub's queue. Later calls on the client fail with `C2D_RESULT_CLOSED`; closing twice is
 * not an error.
 *
 * @param client The client.
 * @retval C2D_RESULT_OK Closed.
 * @retval C2D_RESULT_INVALID_ARGUMENT `client` is NULL.
 *
 * Thread safety: callable from any thread, including the client's own callbacks. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_device_client_close(const struct c2d_device_client *client);

/**
 * Closes the client (as `c2d_device_client_close`) and frees it.
 *
 * @param client The client, or NULL (nothing happens, `C2D_RESULT_OK`).
 * @retval C2D_RESULT_OK The client was freed; no callback of it is running or will run.
 * @retval C2D_RESULT_INVALID_ARGUMENT Called from the client's own callback, which cannot
 *         free the client it runs for: nothing was freed. Close it there instead, and free it
 *         from another thread.
 *
 * Thread safety: callable from any thread but the client's callback thread, once, when no
 * other call is using the client.
 */
C2D_NODISCARD
c2d_result c2d_device_client_free(struct c2d_device_client *client);

/**
 * A short, static description of a result code (`"device not found"`).
 *
 * @param result A `c2d_result` value. Values that are not a `c2d_result` give
 *               `"unknown result"`.
 * @return Static, NUL-terminated text; never NULL, never to be freed.
 *
 * Thread safety: callable from any thread.
 */
const char *c2d_result_str(unsigned int result);

/**
 * Copies the message of the last failed c2d call *on this thread* into `buf`.
 *
 * The message says what failed and why (for example
 * `"unauthorized: the hub refused the credentials (CONNACK 5)"`). It is kept until the next
 * failing call on the same thread; successful calls leave it alone. Like `snprintf`, at most
 * `len - 1` bytes and a terminating NUL are written.
 *
 * @param buf Where to write the message (NUL-terminated, truncated to fit). May be NULL when
 *            `len` is 0, to ask for the length only.
 * @param len The size of `buf` in bytes.
 * @return The length of the whole message in bytes, without the NUL (0 when no call on this
 *         thread has failed). A return value of `len` or more means the copy was truncated.
 *
 * Thread safety: callable from any thread; each thread has its own last error.
 */
size_t c2d_last_error_message(char *buf,
                              size_t len);

#if defined(C2D_HUB)
/**
 * Makes hub options with IoT Hub's defaults: data in `./.c2d-hub`, host `localhost`, ports
 * 8883 (MQTT), 5671 (AMQP) and 443 (HTTPS and WebSockets) on 127.0.0.1, queue depth 50,
 * 64 KB messages, lock 60 s, TTL 1 h, 10 deliveries, feedback batched every 15 s.
 *
 * @param out_options Receives the options, owned by the caller (free them with
 *                    `c2d_hub_options_free`).
 * @retval C2D_RESULT_OK The options were made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_options` is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_options_new(struct c2d_hub_options **out_options);
#endif

#if defined(C2D_HUB)
/**
 * Frees hub options.
 *
 * @param options The options, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once per options object.
 */
void c2d_hub_options_free(struct c2d_hub_options *options);
#endif

#if defined(C2D_HUB)
/**
 * Sets the data directory: the store (`hub.db`), the dev CA (`ca.pem`) and the policies
 * live there, and survive restarts. Created if missing.
 *
 * @param options The options.
 * @param path The directory (copied).
 * @retval C2D_RESULT_OK The directory was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `path` is not UTF-8.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_hub_options_set_data_dir(struct c2d_hub_options *options,
                                        const char *path);
#endif

#if defined(C2D_HUB)
/**
 * Sets the three ports; 0 lets the system choose a free one (read it back with
 * `c2d_hub_mqtt_port` and the like).
 *
 * @param options The options.
 * @param mqtt_port MQTT over TLS (IoT Hub: 8883).
 * @param amqp_port AMQP over TLS (IoT Hub: 5671).
 * @param https_port HTTPS, MQTT and AMQP over WebSockets (IoT Hub: 443).
 * @retval C2D_RESULT_OK The ports were set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_hub_options_set_ports(struct c2d_hub_options *options,
                                     uint16_t mqtt_port,
                                     uint16_t amqp_port,
                                     uint16_t https_port);
#endif

#if defined(C2D_HUB)
/**
 * Sets how the store commits (`C2D_DURABILITY_FSYNC` by default).
 *
 * @param options The options.
 * @param durability One of the `C2D_DURABILITY_*` values.
 * @retval C2D_RESULT_OK The durability was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `durability` is not one.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_hub_options_set_durability(struct c2d_hub_options *options,
                                          c2d_durability durability);
#endif

#if defined(C2D_HUB)
/**
 * Sets the queue rules that differ between tests most often.
 *
 * @param options The options.
 * @param max_queue_depth Messages a device's queue holds; the next send fails with
 *        `C2D_RESULT_QUEUE_FULL` (IoT Hub: 50).
 * @param max_message_size Bytes of body and properties a message may have (IoT Hub: 65536).
 * @param max_delivery_count Abandons after which a message is dead-lettered with
 *        `DeliveryCountExceeded` (IoT Hub: 10).
 * @param feedback_interval_ms How long the hub gathers feedback records into one batch
 *        (IoT Hub: 15000; 0 sends each at once).
 * @retval C2D_RESULT_OK The limits were set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL, or a count or size is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_hub_options_set_limits(struct c2d_hub_options *options,
                                      uint32_t max_queue_depth,
                                      uint32_t max_message_size,
                                      uint32_t max_delivery_count,
                                      uint32_t feedback_interval_ms);
#endif

#if defined(C2D_HUB)
/**
 * Runs the hub on a manual clock that stands still until `c2d_hub_advance_clock` moves it:
 * tests can then pass TTLs and lock timeouts without sleeping. Feedback batching follows the
 * clock too: a feedback record made within the feedback interval of the previous batch
 * (15 s by default) goes out only once the clock is advanced past that interval.
 *
 * @param options The options.
 * @retval C2D_RESULT_OK The hub will use a manual clock.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_hub_options_use_manual_clock(struct c2d_hub_options *options);
#endif

#if defined(C2D_HUB)
/**
 * Makes the hub throttle as an IoT hub of `tier` with `units` units: C2D sends, HTTPS
 * receives and registry operations at the tier's rates (S1: 100 sends, 1 000 receives and
 * 100 registry operations a minute a unit; S3: fifty times that), a request over the rate
 * held up to `backlog_ms`, then refused with IoT Hub's throttling error
 * (`C2D_RESULT_THROTTLED` to c2d's clients). Off by default.
 *
 * @param options The options.
 * @param tier A `C2D_TIER_*`.
 * @param units 1 to the tier's most (F1: 1; S1, S2: 200; S3: 10).
 * @param backlog_ms How long a request waits its turn at most (IoT Hub does not say; 1 000
 *                   is c2d's default).
 * @retval C2D_RESULT_OK The hub will throttle.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL, or the tier has no such units.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_hub_options_set_tier(struct c2d_hub_options *options,
                                    c2d_tier tier,
                                    uint32_t units,
                                    uint32_t backlog_ms);
#endif

#if defined(C2D_HUB)
/**
 * Starts a hub: opens (or creates) its data directory, makes its dev CA and server
 * certificate on first start, and listens. Creates the policies `iothubowner`, `service`,
 * `registryReadWrite` and `device` on first start.
 *
 * @param options Options, or NULL for the defaults (see `c2d_hub_options_new`). Copied.
 * @param out_hub Receives the hub, owned by the caller (free it with `c2d_hub_free`).
 * @retval C2D_RESULT_OK The hub is serving.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_hub` is NULL.
 * @retval C2D_RESULT_UNAVAILABLE A port is taken or cannot be bound.
 * @retval C2D_RESULT_INTERNAL The data directory, store or certificates could not be opened
 *         or made (the last error message says which).
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_hub_start(const struct c2d_hub_options *options,
                         struct c2d_hub **out_hub);
#endif

#if defined(C2D_HUB)
/**
 * Reads the hub's ports (the chosen ones, where the options said 0).
 *
 * @param hub The hub.
 * @param out_mqtt_port Receives the MQTT port.
 * @param out_amqp_port Receives the AMQP port.
 * @param out_https_port Receives the HTTPS / WebSocket port.
 * @retval C2D_RESULT_OK The ports were read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_ports(const struct c2d_hub *hub,
                         uint16_t *out_mqtt_port,
                         uint16_t *out_amqp_port,
                         uint16_t *out_https_port);
#endif

#if defined(C2D_HUB)
/**
 * Reads one of the hub's texts: host name, CA, connection strings, the live page's address.
 *
 * @param hub The hub.
 * @param kind One of the `C2D_HUB_TEXT_*` values.
 * @param out_text Receives the text, NUL-terminated and owned by the hub (valid until
 *                 `c2d_hub_free`).
 * @retval C2D_RESULT_OK The text was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `kind` is not one of them.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_text(const struct c2d_hub *hub,
                        c2d_hub_text_kind kind,
                        const char **out_text);
#endif

#if defined(C2D_HUB)
/**
 * Registers a device (as the REST registry would) and returns its connection string.
 *
 * @param hub The hub.
 * @param device_id The new device's id.
 * @param out_connection_string Receives `HostName=...;DeviceId=...;SharedAccessKey=...`,
 *        owned by the caller (free it with `c2d_string_free`).
 * @retval C2D_RESULT_OK The device was created.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the id is not valid, or the device
 *         exists already.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_hub_create_device(const struct c2d_hub *hub,
                                 const char *device_id,
                                 char **out_connection_string);
#endif

#if defined(C2D_HUB)
/**
 * Registers an X.509 device (`selfSigned`) with a new self-signed certificate valid for a
 * year, and returns its connection string, certificate and key: give the last two to
 * `c2d_device_options_set_client_certificate_pem`.
 *
 * @param hub The hub.
 * @param device_id The new device's id (the certificate's common name).
 * @param out_connection_string Receives `HostName=...;DeviceId=...;x509=true`, owned by the
 *        caller (free it with `c2d_string_free`).
 * @param out_cert_pem Receives the certificate, PEM, owned by the caller (`c2d_string_free`).
 * @param out_key_pem Receives its private key, PEM, owned by the caller (`c2d_string_free`).
 * @retval C2D_RESULT_OK The device was created.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the id is not valid, or the device
 *         exists already.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_hub_create_x509_device(const struct c2d_hub *hub,
                                      const char *device_id,
                                      char **out_connection_string,
                                      char **out_cert_pem,
                                      char **out_key_pem);
#endif

#if defined(C2D_HUB)
/**
 * Counts the messages queued for a device, in any state (waiting, or delivered and not yet
 * settled).
 *
 * @param hub The hub.
 * @param device_id The device.
 * @param out_depth Receives the count (0 for an unknown device).
 * @retval C2D_RESULT_OK The queue was counted.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_queue_depth(const struct c2d_hub *hub,
                               const char *device_id,
                               size_t *out_depth);
#endif

#if defined(C2D_HUB)
/**
 * Counts the requests the hub refused for a reason since it started (what `/metrics`
 * counts as `c2d_hub_refused_total{reason}`): `throttled`, `bad_signature`, ….
 *
 * @param hub The hub.
 * @param reason The reason.
 * @param out_count Receives the count.
 * @retval C2D_RESULT_OK The refusals were counted.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_refusals(const struct c2d_hub *hub,
                            const char *reason,
                            uint64_t *out_count);
#endif

#if defined(C2D_HUB)
/**
 * A fault: ends the device's connections now (its MQTT session, its AMQP connection), the
 * way a network drop looks (no DISCONNECT or close frame), or with the protocol's close when
 * `polite`. The messages they held locked go back to the queue; the device reconnects by
 * itself. Each fault is logged, counted in `/metrics` (`c2d_hub_faults_total`) and, while
 * it lasts, shown on the hub's page.
 *
 * @param hub The hub.
 * @param device_id The device (NULL: every device).
 * @param polite Close with the protocol's close instead.
 * @param out_count Receives how many connections ended (may be NULL).
 * @retval C2D_RESULT_OK Done.
 * @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_fault_drop(const struct c2d_hub *hub,
                              const char *device_id,
                              bool polite,
                              size_t *out_count);
#endif

#if defined(C2D_HUB)
/**
 * A fault: loses the device's next `count` acknowledgements (complete, reject, abandon) on
 * any transport, as a PUBACK lost on the way is: the message stays locked until its lock
 * runs out (or `c2d_hub_fault_expire_locks`), then comes again.
 *
 * @param hub The hub.
 * @param device_id A registered device.
 * @param count How many (at least 1).
 * @retval C2D_RESULT_OK Done.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the device is unknown or `count`
 *         is 0.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_fault_lose_acks(const struct c2d_hub *hub,
                                   const char *device_id,
                                   uint32_t count);
#endif

#if defined(C2D_HUB)
/**
 * A fault: holds every delivery to the device for `delay_ms` before it is sent (its lock
 * runs meanwhile), until `c2d_hub_fault_clear` (or a delay of 0).
 *
 * @param hub The hub.
 * @param device_id A registered device.
 * @param delay_ms The delay in milliseconds (at most 24 hours).
 * @retval C2D_RESULT_OK Done.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the device is unknown or the delay
 *         is over 24 hours.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_fault_delay(const struct c2d_hub *hub,
                               const char *device_id,
                               uint64_t delay_ms);
#endif

#if defined(C2D_HUB)
/**
 * A fault: holds the hub's store commits for `for_ms`, as a slow disk would: sends wait for
 * their answer (each answered once durable, or once its device has completed it), nothing
 * is lost.
 *
 * @param hub The hub.
 * @param for_ms How long, in milliseconds (at most 24 hours).
 * @retval C2D_RESULT_OK Done.
 * @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL or `for_ms` is over 24 hours.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_fault_stall_store(const struct c2d_hub *hub,
                                     uint64_t for_ms);
#endif

#if defined(C2D_HUB)
/**
 * A fault: refuses C2D sends with one of IoT Hub's errors, the next `count` of them, or all
 * for `for_ms` (exactly one of the two non-zero).
 *
 * @param hub The hub.
 * @param error `C2D_SEND_REFUSAL_THROTTLED`, `_BUSY` or `_QUOTA`.
 * @param count How many sends (0: use `for_ms`).
 * @param for_ms For how long, in milliseconds (0: use `count`; at most 24 hours).
 * @retval C2D_RESULT_OK Done.
 * @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL, `error` is unknown, or not exactly
 *         one of `count` and `for_ms` is non-zero.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_fault_refuse_sends(const struct c2d_hub *hub,
                                      c2d_send_refusal error,
                                      uint32_t count,
                                      uint64_t for_ms);
#endif

#if defined(C2D_HUB)
/**
 * A fault: ends every message lock now, as if each had run out: the messages come again.
 *
 * @param hub The hub.
 * @param out_count Receives how many locks ended (may be NULL).
 * @retval C2D_RESULT_OK Done.
 * @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_fault_expire_locks(const struct c2d_hub *hub,
                                      size_t *out_count);
#endif

#if defined(C2D_HUB)
/**
 * Ends every fault in force (acknowledgements still to lose, delays, a stall, refusals).
 *
 * @param hub The hub.
 * @retval C2D_RESULT_OK Done.
 * @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_fault_clear(const struct c2d_hub *hub);
#endif

#if defined(C2D_HUB)
/**
 * Reads how many acknowledgements `c2d_hub_fault_lose_acks` made the hub lose since it
 * started.
 *
 * @param hub The hub.
 * @param out_count Receives the count.
 * @retval C2D_RESULT_OK Done.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_CLOSED The hub was stopped.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_acks_lost(const struct c2d_hub *hub,
                             uint64_t *out_count);
#endif

#if defined(C2D_HUB)
/**
 * Moves the hub's manual clock forward: messages whose TTL passes expire, locks that end
 * return their messages to the queue, and so on, as if that time had gone by.
 *
 * @param hub A hub started with `c2d_hub_options_use_manual_clock`.
 * @param ms How far to move the clock, in milliseconds.
 * @retval C2D_RESULT_OK The clock moved.
 * @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL or runs on the system clock.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_hub_advance_clock(const struct c2d_hub *hub,
                                 uint64_t ms);
#endif

#if defined(C2D_HUB)
/**
 * Stops the hub: stops listening, closes every connection (messages in flight go back to
 * their queues) and closes the store. Everything accepted is on disk; starting a hub on the
 * same data directory serves it again. Stopping twice is not an error.
 *
 * @param hub The hub.
 * @retval C2D_RESULT_OK The hub stopped.
 * @retval C2D_RESULT_INVALID_ARGUMENT `hub` is NULL.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_hub_stop(const struct c2d_hub *hub);
#endif

#if defined(C2D_HUB)
/**
 * Stops the hub (as `c2d_hub_stop`) and frees it.
 *
 * @param hub The hub, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once, when no other call is using the hub.
 */
void c2d_hub_free(struct c2d_hub *hub);
#endif

/**
 * Makes a message to send, with a copy of `body`.
 *
 * @param body The payload (may be NULL when `body_len` is 0). Copied; the caller keeps it.
 * @param body_len The payload's length in bytes.
 * @param out_message Receives the new message, owned by the caller (free it with
 *                    `c2d_message_free`).
 * @retval C2D_RESULT_OK The message was made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_message` is NULL, or `body` is NULL with a length.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_message_new(const uint8_t *body,
                           size_t body_len,
                           struct c2d_message **out_message);

/**
 * Frees a message. A received message that was not settled is given up: it stays locked at
 * the hub and is delivered again when its lock ends (IoT Hub: 60 s).
 *
 * @param message The message, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once per message, when no other call is using it.
 */
void c2d_message_free(struct c2d_message *message);

/**
 * Sets the message id (`message-id`). Without one, `c2d_service_client_send` makes a UUID.
 *
 * @param message A message made by `c2d_message_new`.
 * @param message_id The id (copied).
 * @retval C2D_RESULT_OK The id was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
 *         received.
 *
 * Thread safety: not concurrently with other calls on the same message.
 */
C2D_NODISCARD
c2d_result c2d_message_set_message_id(struct c2d_message *message,
                                      const char *message_id);

/**
 * Sets the correlation id (`correlation-id`).
 *
 * @param message A message made by `c2d_message_new`.
 * @param correlation_id The id (copied).
 * @retval C2D_RESULT_OK The id was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
 *         received.
 *
 * Thread safety: not concurrently with other calls on the same message.
 */
C2D_NODISCARD
c2d_result c2d_message_set_correlation_id(struct c2d_message *message,
                                          const char *correlation_id);

/**
 * Sets the user id (`user-id`, binary).
 *
 * @param message A message made by `c2d_message_new`.
 * @param user_id The id's bytes (copied; may be NULL when `user_id_len` is 0).
 * @param user_id_len Its length.
 * @retval C2D_RESULT_OK The id was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the message was received.
 *
 * Thread safety: not concurrently with other calls on the same message.
 */
C2D_NODISCARD
c2d_result c2d_message_set_user_id(struct c2d_message *message,
                                   const uint8_t *user_id,
                                   size_t user_id_len);

/**
 * Sets which outcomes produce feedback (`iothub-ack`); `C2D_ACK_NONE` by default.
 *
 * @param message A message made by `c2d_message_new`.
 * @param ack One of `C2D_ACK_NONE`, `C2D_ACK_POSITIVE`, `C2D_ACK_NEGATIVE`, `C2D_ACK_FULL`.
 * @retval C2D_RESULT_OK The ack mode was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or received, or `ack` is not a
 *         `c2d_ack`.
 *
 * Thread safety: not concurrently with other calls on the same message.
 */
C2D_NODISCARD
c2d_result c2d_message_set_ack(struct c2d_message *message,
                               c2d_ack ack);

/**
 * Sets the time to live: the message expires `ttl_ms` from now (the hub's default is one
 * hour, its maximum two days). An expired message is dead-lettered with `Expired` feedback.
 *
 * @param message A message made by `c2d_message_new`.
 * @param ttl_ms The time to live in milliseconds, counted from this call.
 * @retval C2D_RESULT_OK The expiry was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or received.
 *
 * Thread safety: not concurrently with other calls on the same message.
 */
C2D_NODISCARD
c2d_result c2d_message_set_ttl_ms(struct c2d_message *message,
                                  uint32_t ttl_ms);

/**
 * Sets the content type (`content-type`, `$.ct` on MQTT).
 *
 * @param message A message made by `c2d_message_new`.
 * @param content_type The content type (copied), for example `"application/json"`.
 * @retval C2D_RESULT_OK The content type was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
 *         received.
 *
 * Thread safety: not concurrently with other calls on the same message.
 */
C2D_NODISCARD
c2d_result c2d_message_set_content_type(struct c2d_message *message,
                                        const char *content_type);

/**
 * Sets the content encoding (`content-encoding`, `$.ce` on MQTT).
 *
 * @param message A message made by `c2d_message_new`.
 * @param content_encoding The content encoding (copied), for example `"utf-8"`.
 * @retval C2D_RESULT_OK The content encoding was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
 *         received.
 *
 * Thread safety: not concurrently with other calls on the same message.
 */
C2D_NODISCARD
c2d_result c2d_message_set_content_encoding(struct c2d_message *message,
                                            const char *content_encoding);

/**
 * Adds an application property, or replaces the value of the one with this name.
 *
 * @param message A message made by `c2d_message_new`.
 * @param name The property name (copied).
 * @param value The property value (copied).
 * @retval C2D_RESULT_OK The property was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or not UTF-8, or the message was
 *         received.
 *
 * Thread safety: not concurrently with other calls on the same message.
 */
C2D_NODISCARD
c2d_result c2d_message_set_property(struct c2d_message *message,
                                    const char *name,
                                    const char *value);

/**
 * Reads the body.
 *
 * @param message The message.
 * @param out_body Receives a pointer to the body, owned by the message (not NUL-terminated;
 *                 NULL when the body is empty).
 * @param out_body_len Receives the body's length in bytes.
 * @retval C2D_RESULT_OK The body was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_body(const struct c2d_message *message,
                            const uint8_t **out_body,
                            size_t *out_body_len);

/**
 * Reads the message id (`message-id`, as text: UUIDs lowercase and hyphenated, numbers in
 * decimal, binary ids in hex).
 *
 * @param message The message.
 * @param out_value Receives the id, NUL-terminated and owned by the message, or NULL when the
 *                  message has none.
 * @retval C2D_RESULT_OK The id was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_PROTOCOL The id holds a NUL byte.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_message_id(const struct c2d_message *message,
                                  const char **out_value);

/**
 * Reads the correlation id (`correlation-id`, as text).
 *
 * @param message The message.
 * @param out_value Receives the id, owned by the message, or NULL when there is none.
 * @retval C2D_RESULT_OK The id was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_PROTOCOL The id holds a NUL byte.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_correlation_id(const struct c2d_message *message,
                                      const char **out_value);

/**
 * Reads the `to` address (`/devices/{id}/messages/devicebound`).
 *
 * @param message The message.
 * @param out_value Receives the address, owned by the message, or NULL when there is none.
 * @retval C2D_RESULT_OK The address was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_PROTOCOL The address holds a NUL byte.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_to(const struct c2d_message *message,
                          const char **out_value);

/**
 * Reads the content type.
 *
 * @param message The message.
 * @param out_value Receives the content type, owned by the message, or NULL when unset.
 * @retval C2D_RESULT_OK The content type was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_PROTOCOL The value holds a NUL byte.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_content_type(const struct c2d_message *message,
                                    const char **out_value);

/**
 * Reads the content encoding.
 *
 * @param message The message.
 * @param out_value Receives the content encoding, owned by the message, or NULL when unset.
 * @retval C2D_RESULT_OK The content encoding was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_PROTOCOL The value holds a NUL byte.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_content_encoding(const struct c2d_message *message,
                                        const char **out_value);

/**
 * Reads the lock token of a message received over AMQP.
 *
 * @param message The message.
 * @param out_value Receives the lock token, owned by the message, or NULL when there is none
 *                  (MQTT does not carry it; messages to send have none).
 * @retval C2D_RESULT_OK The lock token was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_lock_token(const struct c2d_message *message,
                                  const char **out_value);

/**
 * Reads the user id (`user-id`, binary).
 *
 * @param message The message.
 * @param out_value Receives the bytes, owned by the message, or NULL when there is none.
 * @param out_len Receives their length (0 when there is none).
 * @retval C2D_RESULT_OK The user id was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_user_id(const struct c2d_message *message,
                               const uint8_t **out_value,
                               size_t *out_len);

/**
 * Reads when the message expires (`absolute-expiry-time`).
 *
 * @param message The message.
 * @param out_value Receives the expiry in milliseconds since the Unix epoch, or 0 when the
 *                  message has none (the hub then applies its default TTL).
 * @retval C2D_RESULT_OK The expiry was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_expiry_time_ms(const struct c2d_message *message,
                                      int64_t *out_value);

/**
 * Reads when the hub accepted the message (AMQP only).
 *
 * @param message The message.
 * @param out_value Receives milliseconds since the Unix epoch, or 0 when unknown (MQTT, or a
 *                  message to send).
 * @retval C2D_RESULT_OK The time was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_enqueued_time_ms(const struct c2d_message *message,
                                        int64_t *out_value);

/**
 * Reads the ack mode (`iothub-ack`).
 *
 * @param message The message.
 * @param out_value Receives a `c2d_ack` (`C2D_ACK_NONE` when unset).
 * @retval C2D_RESULT_OK The ack mode was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_ack(const struct c2d_message *message,
                           c2d_ack *out_value);

/**
 * Reads how many times the message was abandoned before this delivery (AMQP only).
 *
 * @param message The message.
 * @param out_value Receives the count (0 over MQTT, which does not carry it, and for
 *                  messages to send).
 * @retval C2D_RESULT_OK The count was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_delivery_count(const struct c2d_message *message,
                                      uint32_t *out_value);

/**
 * Reads the hub's sequence number of the message (AMQP only).
 *
 * @param message The message.
 * @param out_value Receives the sequence number (0 when unknown).
 * @retval C2D_RESULT_OK The number was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_sequence_number(const struct c2d_message *message,
                                       uint64_t *out_value);

/**
 * Counts the application properties.
 *
 * @param message The message.
 * @param out_count Receives the number of properties.
 * @retval C2D_RESULT_OK The properties were counted.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_property_count(const struct c2d_message *message,
                                      size_t *out_count);

/**
 * Reads the application property at `index` (in the order the sender set them), to iterate
 * over all of them with `c2d_message_property_count`.
 *
 * @param message The message.
 * @param index From 0 to the property count - 1.
 * @param out_name Receives the name, NUL-terminated and owned by the message.
 * @param out_value Receives the value, NUL-terminated and owned by the message.
 * @retval C2D_RESULT_OK The property was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or `index` is out of range.
 * @retval C2D_RESULT_PROTOCOL The name or value holds a NUL byte.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_property_at(const struct c2d_message *message,
                                   size_t index,
                                   const char **out_name,
                                   const char **out_value);

/**
 * Reads the value of the application property called `name`.
 *
 * @param message The message.
 * @param name The property name.
 * @param out_value Receives the value, owned by the message, or NULL when the message has no
 *                  property of that name.
 * @retval C2D_RESULT_OK The property was looked up.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `name` is not UTF-8.
 * @retval C2D_RESULT_PROTOCOL The value holds a NUL byte.
 *
 * Thread safety: callable from any thread while the message is not being changed or freed.
 */
C2D_NODISCARD
c2d_result c2d_message_property(const struct c2d_message *message,
                                const char *name,
                                const char **out_value);

/**
 * Completes a received message: the hub removes it (and sends `Success` feedback if the
 * sender asked). Over MQTT this sends the PUBACK, after those of messages received before it.
 * Over MQTT and AMQP the settlement is a frame the hub does not answer: this returns once it
 * is queued (a connection lost before it is written means the hub delivers the message
 * again, as when the frame is lost on the way); over HTTPS it waits for the hub's answer.
 * The message stays the caller's to free.
 *
 * @param message A received message.
 * @retval C2D_RESULT_OK The message was completed.
 * @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or was not received.
 * @retval C2D_RESULT_ALREADY_SETTLED The message was completed, rejected or abandoned before
 *         (also after a failed attempt: a settle call the transport can make uses the
 *         message up; an MQTT reject or abandon does not).
 * @retval C2D_RESULT_MESSAGE_LOCK_LOST The lock ended or its connection was lost; the hub
 *         delivers the message again.
 * @retval C2D_RESULT_CLOSED The client that received it was closed.
 *
 * Thread safety: callable from any thread, including the client's message callback.
 */
C2D_NODISCARD
c2d_result c2d_message_complete(struct c2d_message *message);

/**
 * Rejects a received message: the hub dead-letters it (`Rejected` feedback). AMQP and HTTPS.
 *
 * @param message A received message.
 * @retval C2D_RESULT_OK The message was rejected.
 * @retval C2D_RESULT_UNSUPPORTED The client uses MQTT, which cannot reject. Nothing is sent
 *         and nothing changes: the message is still the caller's to complete.
 * @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or was not received.
 * @retval C2D_RESULT_ALREADY_SETTLED The message was settled before.
 * @retval C2D_RESULT_MESSAGE_LOCK_LOST The lock ended or its connection was lost.
 * @retval C2D_RESULT_CLOSED The client that received it was closed.
 *
 * Thread safety: callable from any thread, including the client's message callback.
 */
C2D_NODISCARD
c2d_result c2d_message_reject(struct c2d_message *message);

/**
 * Abandons a received message: the hub queues it again with its delivery count one higher;
 * at the hub's maximum (IoT Hub: 10) it is dead-lettered (`DeliveryCountExceeded`). AMQP and
 * HTTPS.
 *
 * @param message A received message.
 * @retval C2D_RESULT_OK The message was abandoned.
 * @retval C2D_RESULT_UNSUPPORTED The client uses MQTT, which cannot abandon. Nothing is sent
 *         and nothing changes: the message is still the caller's to complete.
 * @retval C2D_RESULT_INVALID_ARGUMENT `message` is NULL or was not received.
 * @retval C2D_RESULT_ALREADY_SETTLED The message was settled before.
 * @retval C2D_RESULT_MESSAGE_LOCK_LOST The lock ended or its connection was lost.
 * @retval C2D_RESULT_CLOSED The client that received it was closed.
 *
 * Thread safety: callable from any thread, including the client's message callback.
 */
C2D_NODISCARD
c2d_result c2d_message_abandon(struct c2d_message *message);

/**
 * Makes a policy that never retries: the first failure is returned.
 *
 * @param out_policy Receives the new policy, owned by the caller (free it with
 *                   `c2d_retry_policy_free`).
 * @retval C2D_RESULT_OK The policy was made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_policy` is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_retry_policy_none_new(struct c2d_retry_policy **out_policy);

/**
 * Makes a policy that waits the same time before every retry.
 *
 * @param interval_ms The wait before each retry, in milliseconds.
 * @param max_retries Retries at most, or `C2D_RETRIES_UNLIMITED`.
 * @param out_policy Receives the new policy, owned by the caller.
 * @retval C2D_RESULT_OK The policy was made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_policy` is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_retry_policy_fixed_new(uint32_t interval_ms,
                                      uint32_t max_retries,
                                      struct c2d_retry_policy **out_policy);

/**
 * Makes an exponential back-off policy with jitter (the default of every client: 100 ms
 * doubling up to 10 s, without end): waits double from `initial_ms` up to `max_ms`, each
 * shortened by a random part of up to a quarter, so that many devices do not retry in step.
 *
 * @param initial_ms The first wait, in milliseconds.
 * @param max_ms The longest wait, in milliseconds.
 * @param max_retries Retries at most, or `C2D_RETRIES_UNLIMITED`.
 * @param out_policy Receives the new policy, owned by the caller.
 * @retval C2D_RESULT_OK The policy was made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_policy` is NULL, or `initial_ms` > `max_ms`.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_retry_policy_exponential_new(uint32_t initial_ms,
                                            uint32_t max_ms,
                                            uint32_t max_retries,
                                            struct c2d_retry_policy **out_policy);

/**
 * Makes a policy of the caller's own: `callback` decides each retry.
 *
 * @param callback Called before each retry (see `c2d_retry_callback`); must not be NULL.
 * @param user_data Passed to `callback` as is; must stay valid for as long as a client made
 *                  with this policy exists, and be usable from c2d's threads.
 * @param out_policy Receives the new policy, owned by the caller.
 * @retval C2D_RESULT_OK The policy was made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `callback` or `out_policy` is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_retry_policy_custom_new(c2d_retry_callback callback,
                                       void *user_data,
                                       struct c2d_retry_policy **out_policy);

/**
 * Frees a retry policy. Clients made with it keep their own copy.
 *
 * @param policy The policy, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once per policy.
 */
void c2d_retry_policy_free(struct c2d_retry_policy *policy);

#if defined(C2D_SERVICE)
/**
 * Makes service options with every setting at its default.
 *
 * @param out_options Receives the options, owned by the caller (free them with
 *                    `c2d_service_options_free`).
 * @retval C2D_RESULT_OK The options were made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_options` is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_service_options_new(struct c2d_service_options **out_options);
#endif

#if defined(C2D_SERVICE)
/**
 * Frees service options. Clients connected with them keep their own copy.
 *
 * @param options The options, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once per options object.
 */
void c2d_service_options_free(struct c2d_service_options *options);
#endif

#if defined(C2D_SERVICE)
/**
 * Chooses the transport (`C2D_SERVICE_TRANSPORT_AMQP` by default).
 *
 * @param options The options.
 * @param transport One of the `C2D_SERVICE_TRANSPORT_*` values.
 * @retval C2D_RESULT_OK The transport was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `transport` is not a transport.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_service_options_set_transport(struct c2d_service_options *options,
                                             c2d_service_transport transport);
#endif

#if defined(C2D_SERVICE)
/**
 * Trusts the CA certificates in `pem` (for example a local hub's dev CA) instead of the
 * system's roots, for AMQP and for REST.
 *
 * @param options The options.
 * @param pem PEM text of one or more certificates (copied).
 * @param pem_len Its length in bytes.
 * @retval C2D_RESULT_OK The CA was set (it is parsed at connect).
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `pem_len` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_service_options_set_trusted_ca_pem(struct c2d_service_options *options,
                                                  const uint8_t *pem,
                                                  size_t pem_len);
#endif

#if defined(C2D_SERVICE)
/**
 * Trusts the CA certificates in the PEM file at `path` instead of the system's roots.
 *
 * @param options The options.
 * @param path The file's path; it is read now.
 * @retval C2D_RESULT_OK The file was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the file cannot be read or is
 *         empty.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_service_options_set_trusted_ca_file(struct c2d_service_options *options,
                                                   const char *path);
#endif

#if defined(C2D_SERVICE)
/**
 * Overrides the AMQP port (5671, or 443 for AMQP over WebSockets), for a local hub on
 * non-standard ports.
 *
 * @param options The options.
 * @param port The TCP port.
 * @retval C2D_RESULT_OK The port was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `port` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_service_options_set_port(struct c2d_service_options *options,
                                        uint16_t port);
#endif

#if defined(C2D_SERVICE)
/**
 * Overrides the HTTPS port of the REST calls (registry, purge; 443 by default).
 *
 * @param options The options.
 * @param port The TCP port.
 * @retval C2D_RESULT_OK The port was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `port` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_service_options_set_https_port(struct c2d_service_options *options,
                                              uint16_t port);
#endif

#if defined(C2D_SERVICE)
/**
 * Reaches the hub through an HTTP proxy (`CONNECT`): the registry, purge and feedback over
 * REST, and AMQP over WebSockets, which a proxy needs (`C2D_SERVICE_TRANSPORT_AMQP_WS`;
 * connecting with plain AMQP and a proxy fails with `C2D_RESULT_INVALID_ARGUMENT`). No proxy
 * by default: the environment is not read (pass `getenv("HTTPS_PROXY")` to use its proxy).
 *
 * @param options The options.
 * @param url `http://[user:password@]host[:port]` (user and password percent-encoded).
 * @retval C2D_RESULT_OK The proxy was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or the URL is not an HTTP proxy's.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_service_options_set_proxy(struct c2d_service_options *options,
                                         const char *url);
#endif

#if defined(C2D_SERVICE)
/**
 * Sets the retry policy for connecting and operations (exponential back-off with jitter by
 * default).
 *
 * @param options The options.
 * @param policy The policy (copied; the caller keeps and frees it).
 * @retval C2D_RESULT_OK The policy was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_service_options_set_retry(struct c2d_service_options *options,
                                         const struct c2d_retry_policy *policy);
#endif

#if defined(C2D_SERVICE)
/**
 * Sets how long one attempt of an operation may take (30 s by default).
 *
 * @param options The options.
 * @param timeout_ms The limit in milliseconds (at least 1).
 * @retval C2D_RESULT_OK The timeout was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `timeout_ms` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_service_options_set_timeout_ms(struct c2d_service_options *options,
                                              uint32_t timeout_ms);
#endif

#if defined(C2D_SERVICE)
/**
 * Connects a back-end to the hub with a policy connection string.
 *
 * @param connection_string `HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`; the
 *        policy needs ServiceConnect to send and read feedback, RegistryWrite to create
 *        devices.
 * @param options Options, or NULL for the defaults (AMQP, system CAs, standard ports).
 *                Copied: the caller keeps and frees them.
 * @param out_client Receives the client, owned by the caller (free it with
 *                   `c2d_service_client_free`).
 * @retval C2D_RESULT_OK Connected.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the connection string or CA is
 *         malformed.
 * @retval C2D_RESULT_UNAUTHORIZED The hub refused the credentials.
 * @retval C2D_RESULT_UNAVAILABLE The hub could not be reached (after the retries).
 * @retval C2D_RESULT_TIMEOUT Connecting took longer than the timeout.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_service_client_connect(const char *connection_string,
                                      const struct c2d_service_options *options,
                                      struct c2d_service_client **out_client);
#endif

#if defined(C2D_SERVICE)
/**
 * Sends a message to a device's queue, waiting until the hub has accepted it (stored it
 * durably). Without a message id, a UUID is made for it.
 *
 * @param client The client.
 * @param device_id The device.
 * @param message The message (made by `c2d_message_new`; the caller keeps and frees it).
 * @param out_sent Receives the sent message, owned by the caller (free it with
 *                 `c2d_sent_message_free`), to read its id or wait for its outcome. May be
 *                 NULL when neither is needed.
 * @retval C2D_RESULT_OK The hub accepted the message.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `device_id` is not UTF-8.
 * @retval C2D_RESULT_DEVICE_NOT_FOUND The device is not registered.
 * @retval C2D_RESULT_QUEUE_FULL The device's queue is full (IoT Hub: 50 messages).
 * @retval C2D_RESULT_MESSAGE_TOO_LARGE The message is larger than the hub accepts (64 KB).
 * @retval C2D_RESULT_UNAUTHORIZED The policy lacks ServiceConnect.
 * @retval C2D_RESULT_UNAVAILABLE, C2D_RESULT_TIMEOUT The hub could not be reached in time
 *         (after the retries).
 * @retval C2D_RESULT_CLOSED The client was closed, before or during the call (another thread
 *         closing the client ends the wait at once; the message may then have reached the
 *         hub, as when a send times out).
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_service_client_send(const struct c2d_service_client *client,
                                   const char *device_id,
                                   const struct c2d_message *message,
                                   struct c2d_sent_message **out_sent);
#endif

#if defined(C2D_SERVICE)
/**
 * Reads the id of a sent message (the one it was given, or the one made for it).
 *
 * @param sent The sent message.
 * @param out_message_id Receives the id, NUL-terminated and owned by `sent`.
 * @retval C2D_RESULT_OK The id was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while `sent` is not being freed.
 */
C2D_NODISCARD
c2d_result c2d_sent_message_id(const struct c2d_sent_message *sent,
                               const char **out_message_id);
#endif

#if defined(C2D_SERVICE)
/**
 * Waits for this message's own feedback record. The message's ack mode decides which
 * outcomes produce one: with `C2D_ACK_POSITIVE` a rejected message produces none, with
 * `C2D_ACK_NEGATIVE` a completed one produces none; the timeout ends such waits.
 *
 * The records come from the hub's one feedback endpoint, which IoT Hub gives to one reader
 * at a time: two service clients open on one hub take records from each other, and a record
 * can reach the client that did not send its message. Keep one client per hub, or free one
 * before connecting the next.
 *
 * The hub batches the records: one made after a quiet feedback interval (IoT Hub: about
 * 15 s) goes out at once, the next ones once that interval has passed since the batch
 * before. A local hub started with `c2d_hub_options_use_manual_clock` counts that interval on
 * its clock: a second outcome comes only after `c2d_hub_advance_clock` moves it past it.
 *
 * @param sent The sent message.
 * @param timeout_ms How long to wait, in milliseconds, or `C2D_TIMEOUT_INFINITE`.
 * @param out_record Receives the record, owned by the caller (free it with
 *                   `c2d_feedback_record_free`).
 * @retval C2D_RESULT_OK The record arrived.
 * @retval C2D_RESULT_TIMEOUT No record within `timeout_ms`.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, or the message was sent with
 *         `C2D_ACK_NONE`.
 * @retval C2D_RESULT_CLOSED The client was closed, before or during the wait (another thread
 *         closing the client with `c2d_service_client_close` ends the wait at once).
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_sent_message_wait_outcome(const struct c2d_sent_message *sent,
                                         uint32_t timeout_ms,
                                         struct c2d_feedback_record **out_record);
#endif

#if defined(C2D_SERVICE)
/**
 * Frees a sent message (the message itself is at the hub; nothing is cancelled).
 *
 * @param sent The sent message, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once, when no other call is using it.
 */
void c2d_sent_message_free(struct c2d_sent_message *sent);
#endif

#if defined(C2D_SERVICE)
/**
 * Waits up to `timeout_ms` for the next feedback record of any message. The hub's feedback
 * queue is one for the whole hub: the client reads it and hands each record both to the
 * waiter of that message (`c2d_sent_message_wait_outcome`) and to this call. Records that
 * arrived before the first call of this function on a client are not returned by it.
 *
 * @param client The client.
 * @param timeout_ms How long to wait, in milliseconds, or `C2D_TIMEOUT_INFINITE`.
 * @param out_record Receives the record, owned by the caller (free it with
 *                   `c2d_feedback_record_free`).
 * @retval C2D_RESULT_OK A record arrived.
 * @retval C2D_RESULT_TIMEOUT No record within `timeout_ms`.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_UNAUTHORIZED The policy lacks ServiceConnect.
 * @retval C2D_RESULT_CLOSED The client was closed, before or during the wait (another thread
 *         closing the client with `c2d_service_client_close` ends the wait at once).
 *
 * Thread safety: callable from any thread; concurrent callers take turns.
 */
C2D_NODISCARD
c2d_result c2d_service_client_feedback_receive(const struct c2d_service_client *client,
                                               uint32_t timeout_ms,
                                               struct c2d_feedback_record **out_record);
#endif

#if defined(C2D_SERVICE)
/**
 * Removes every message queued for a device (`Purged` feedback for those that asked).
 *
 * @param client The client.
 * @param device_id The device.
 * @param out_purged Receives how many messages were removed.
 * @retval C2D_RESULT_OK The queue was purged.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `device_id` is not UTF-8.
 * @retval C2D_RESULT_DEVICE_NOT_FOUND The device is not registered.
 * @retval C2D_RESULT_UNAUTHORIZED The policy lacks ServiceConnect.
 * @retval C2D_RESULT_CLOSED The client was closed.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_service_client_purge(const struct c2d_service_client *client,
                                    const char *device_id,
                                    uint64_t *out_purged);
#endif

#if defined(C2D_SERVICE)
/**
 * Closes the connection; the calls other threads are blocked in (sends, purges, outcome
 * waits, feedback reads) end at once with `C2D_RESULT_CLOSED`, and so do later calls. This is
 * how another thread stops a waiting one; free the client only once that one has returned.
 * Closing twice is not an error.
 *
 * @param client The client.
 * @retval C2D_RESULT_OK Closed.
 * @retval C2D_RESULT_INVALID_ARGUMENT `client` is NULL.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_service_client_close(const struct c2d_service_client *client);
#endif

#if defined(C2D_SERVICE)
/**
 * Closes the client (as `c2d_service_client_close`) and frees it.
 *
 * @param client The client, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once, when no other call is using the client.
 */
void c2d_service_client_free(struct c2d_service_client *client);
#endif

#if defined(C2D_SERVICE)
/**
 * Makes fan-out options with every setting at its default: 64 sends in flight, no pacing,
 * the client's retry policy.
 *
 * @param out_options Receives the options, owned by the caller (free them with
 *                    `c2d_fan_out_options_free`).
 * @retval C2D_RESULT_OK The options were made.
 * @retval C2D_RESULT_INVALID_ARGUMENT `out_options` is NULL.
 *
 * Thread safety: callable from any thread.
 */
C2D_NODISCARD
c2d_result c2d_fan_out_options_new(struct c2d_fan_out_options **out_options);
#endif

#if defined(C2D_SERVICE)
/**
 * Frees fan-out options.
 *
 * @param options The options, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once, when no other call is using them.
 */
void c2d_fan_out_options_free(struct c2d_fan_out_options *options);
#endif

#if defined(C2D_SERVICE)
/**
 * Sets how many sends may wait for the hub's answer at once (64 by default).
 *
 * @param options The options.
 * @param in_flight At least 1.
 * @retval C2D_RESULT_OK The limit was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `in_flight` is 0.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_fan_out_options_set_in_flight(struct c2d_fan_out_options *options,
                                             uint32_t in_flight);
#endif

#if defined(C2D_SERVICE)
/**
 * Starts at most `per_second` sends a second (no pacing by default).
 *
 * @param options The options.
 * @param per_second A positive number.
 * @retval C2D_RESULT_OK The rate was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL or `per_second` is not positive.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_fan_out_options_set_rate(struct c2d_fan_out_options *options,
                                        double per_second);
#endif

#if defined(C2D_SERVICE)
/**
 * Paces the sends to the C2D send throttle of an IoT hub of `tier` with `units` units
 * (S1: 100 a minute a unit; S3: 5 000), replacing a rate.
 *
 * @param options The options.
 * @param tier A `C2D_TIER_*`.
 * @param units 1 to the tier's most (F1: 1; S1, S2: 200; S3: 10).
 * @retval C2D_RESULT_OK The pace was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT `options` is NULL, or the tier has no such units.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_fan_out_options_set_tier(struct c2d_fan_out_options *options,
                                        c2d_tier tier,
                                        uint32_t units);
#endif

#if defined(C2D_SERVICE)
/**
 * Sets how each device's send is retried (the client's policy by default).
 *
 * @param options The options.
 * @param policy The policy (copied; the caller keeps and frees it).
 * @retval C2D_RESULT_OK The policy was set.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: not concurrently with other calls on the same options.
 */
C2D_NODISCARD
c2d_result c2d_fan_out_options_set_retry(struct c2d_fan_out_options *options,
                                         const struct c2d_retry_policy *policy);
#endif

#if defined(C2D_SERVICE)
/**
 * Sends a message to many devices, each with its own message id (the message's id, `:` and
 * the device id; or a new UUID each when the message has none), and reports each device's
 * result to `callback` as it completes. At most `in_flight` sends wait for the hub at once,
 * started no faster than the options' rate or tier; throttling and transient errors are
 * retried per device (each throttling slowing the whole run), an unknown device, a full
 * queue or a message too large fail that device at once, refused credentials or a closed
 * client end the run.
 *
 * @param client The client.
 * @param device_ids The devices' ids (`count` NUL-terminated UTF-8 strings; the caller keeps
 *                   them).
 * @param count How many.
 * @param message The message (the caller keeps and frees it).
 * @param options Fan-out options, or NULL for the defaults (copied).
 * @param callback Called for each device's result (see `c2d_send_many_callback`).
 * @param context Given to `callback`.
 * @param out_summary Receives what the run did, or NULL.
 * @retval C2D_RESULT_OK The run went through its devices (each device's own result went
 *         to `callback`; the summary counts them).
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or an id is not UTF-8.
 * @retval C2D_RESULT_UNAUTHORIZED, C2D_RESULT_CLOSED The run ended early for this reason
 *         (the summary says how far it got).
 *
 * Thread safety: callable from any thread. Blocks until every device is done.
 */
C2D_NODISCARD
c2d_result c2d_service_client_send_many(const struct c2d_service_client *client,
                                        const char *const *device_ids,
                                        size_t count,
                                        const struct c2d_message *message,
                                        const struct c2d_fan_out_options *options,
                                        c2d_send_many_callback callback,
                                        void *context,
                                        struct c2d_fan_out_summary *out_summary);
#endif

#if defined(C2D_SERVICE)
/**
 * The name IoT Hub gives a status (`"DeliveryCountExceeded"`).
 *
 * @param status A `c2d_feedback_status`; other values give `"Unknown"`.
 * @return Static, NUL-terminated text; never NULL, never to be freed.
 *
 * Thread safety: callable from any thread.
 */
const char *c2d_feedback_status_str(uint32_t status);
#endif

#if defined(C2D_SERVICE)
/**
 * Reads the outcome.
 *
 * @param record The record.
 * @param out_status Receives the outcome.
 * @retval C2D_RESULT_OK The outcome was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the record is not being freed.
 */
C2D_NODISCARD
c2d_result c2d_feedback_record_status(const struct c2d_feedback_record *record,
                                      c2d_feedback_status *out_status);
#endif

#if defined(C2D_SERVICE)
/**
 * Reads the id of the message the record is about.
 *
 * @param record The record.
 * @param out_value Receives the message id, NUL-terminated and owned by the record.
 * @retval C2D_RESULT_OK The id was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_PROTOCOL The id holds a NUL byte.
 *
 * Thread safety: callable from any thread while the record is not being freed.
 */
C2D_NODISCARD
c2d_result c2d_feedback_record_original_message_id(const struct c2d_feedback_record *record,
                                                   const char **out_value);
#endif

#if defined(C2D_SERVICE)
/**
 * Reads the id of the device the message was for.
 *
 * @param record The record.
 * @param out_value Receives the device id, NUL-terminated and owned by the record.
 * @retval C2D_RESULT_OK The id was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_PROTOCOL The id holds a NUL byte.
 *
 * Thread safety: callable from any thread while the record is not being freed.
 */
C2D_NODISCARD
c2d_result c2d_feedback_record_device_id(const struct c2d_feedback_record *record,
                                         const char **out_value);
#endif

#if defined(C2D_SERVICE)
/**
 * Reads the hub's description of the outcome.
 *
 * @param record The record.
 * @param out_value Receives the description, NUL-terminated and owned by the record.
 * @retval C2D_RESULT_OK The description was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 * @retval C2D_RESULT_PROTOCOL The description holds a NUL byte.
 *
 * Thread safety: callable from any thread while the record is not being freed.
 */
C2D_NODISCARD
c2d_result c2d_feedback_record_description(const struct c2d_feedback_record *record,
                                           const char **out_value);
#endif

#if defined(C2D_SERVICE)
/**
 * Reads when the outcome happened.
 *
 * @param record The record.
 * @param out_value Receives milliseconds since the Unix epoch.
 * @retval C2D_RESULT_OK The time was read.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL.
 *
 * Thread safety: callable from any thread while the record is not being freed.
 */
C2D_NODISCARD
c2d_result c2d_feedback_record_enqueued_time_ms(const struct c2d_feedback_record *record,
                                                int64_t *out_value);
#endif

#if defined(C2D_SERVICE)
/**
 * Frees a feedback record.
 *
 * @param record The record, or NULL (nothing happens).
 *
 * Thread safety: callable from any thread, once per record.
 */
void c2d_feedback_record_free(struct c2d_feedback_record *record);
#endif

#if defined(C2D_SERVICE)
/**
 * Registers a device with SAS authentication (keys made by the hub) and returns its
 * connection string.
 *
 * @param client A service client whose policy has RegistryWrite.
 * @param device_id The new device's id.
 * @param out_connection_string Receives
 *        `HostName=...;DeviceId=...;SharedAccessKey=...`, owned by the caller (free it with
 *        `c2d_string_free`).
 * @retval C2D_RESULT_OK The device was created.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL, the id is not valid, or the device
 *         exists already.
 * @retval C2D_RESULT_UNAUTHORIZED The policy lacks RegistryWrite.
 * @retval C2D_RESULT_CLOSED The client was closed.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_service_client_create_device(const struct c2d_service_client *client,
                                            const char *device_id,
                                            char **out_connection_string);
#endif

#if defined(C2D_SERVICE)
/**
 * Deletes a device, and with it its queue.
 *
 * @param client A service client whose policy has RegistryWrite.
 * @param device_id The device.
 * @retval C2D_RESULT_OK The device was deleted.
 * @retval C2D_RESULT_INVALID_ARGUMENT An argument is NULL or `device_id` is not UTF-8.
 * @retval C2D_RESULT_DEVICE_NOT_FOUND There is no such device.
 * @retval C2D_RESULT_UNAUTHORIZED The policy lacks RegistryWrite.
 * @retval C2D_RESULT_CLOSED The client was closed.
 *
 * Thread safety: callable from any thread. Blocks.
 */
C2D_NODISCARD
c2d_result c2d_service_client_delete_device(const struct c2d_service_client *client,
                                            const char *device_id);
#endif

/**
 * The version of the loaded library, `"MAJOR.MINOR.PATCH"`; compare it with the
 * `C2D_VERSION_*` macros to detect a header/library mismatch.
 *
 * @return Static, NUL-terminated text; never NULL, never to be freed.
 *
 * Thread safety: callable from any thread.
 */
const char *c2d_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* C2D_H */
