/* A device application in C: receives its C2D messages and settles each by what it asks
 * for: command=reboot is done (complete), an unknown command is refused (reject), and
 * command=update is retried once later (abandon, then complete).
 *
 * env: IOTHUB_DEVICE_CONNECTION_STRING, IOTHUB_CA_FILE (optional), C2D_TRANSPORT
 * (mqtt|mqtt-ws|amqp|amqp-ws, default amqp), C2D_PORT (optional), C2D_COUNT (messages to
 * handle before exiting, default: run until the connection ends). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <c2d.h>

/* Prints what failed, with c2d's own message, and exits. */
static void fail(const char *what, c2d_result r) {
    char why[512];
    c2d_last_error_message(why, sizeof why);
    fprintf(stderr, "device: %s: %s (%s)\n", what, c2d_result_str(r), why);
    exit(1);
}

#define TRY(what, call)                        \
    do {                                       \
        c2d_result r_ = (call);                \
        if (r_ != C2D_RESULT_OK) fail(what, r_); \
    } while (0)

static void on_status(void *user_data, c2d_connection_status status, const char *reason) {
    (void)user_data;
    switch (status) {
    case C2D_CONNECTION_STATUS_CONNECTED: printf("device: connected\n"); break;
    case C2D_CONNECTION_STATUS_RECONNECTING: printf("device: reconnecting\n"); break;
    default: printf("device: disconnected (%s)\n", reason ? reason : "?"); break;
    }
    fflush(stdout);
}

static c2d_transport transport_named(const char *name) {
    if (strcmp(name, "mqtt") == 0) return C2D_TRANSPORT_MQTT;
    if (strcmp(name, "mqtt-ws") == 0) return C2D_TRANSPORT_MQTT_WS;
    if (strcmp(name, "amqp") == 0) return C2D_TRANSPORT_AMQP;
    if (strcmp(name, "amqp-ws") == 0) return C2D_TRANSPORT_AMQP_WS;
    fprintf(stderr, "device: unknown C2D_TRANSPORT %s\n", name);
    exit(2);
}

int main(void) {
    const char *cs = getenv("IOTHUB_DEVICE_CONNECTION_STRING");
    const char *ca = getenv("IOTHUB_CA_FILE");
    const char *transport = getenv("C2D_TRANSPORT");
    const char *port = getenv("C2D_PORT");
    const char *count_env = getenv("C2D_COUNT");
    if (!cs) {
        fprintf(stderr, "device: set IOTHUB_DEVICE_CONNECTION_STRING\n");
        return 2;
    }
    long count = count_env ? atol(count_env) : -1;

    c2d_device_options *opts = NULL;
    TRY("options", c2d_device_options_new(&opts));
    TRY("transport", c2d_device_options_set_transport(opts, transport_named(transport ? transport : "amqp")));
    if (ca) TRY("CA file", c2d_device_options_set_trusted_ca_file(opts, ca));
    if (port) TRY("port", c2d_device_options_set_port(opts, (uint16_t)atoi(port)));
    TRY("status callback", c2d_device_options_set_connection_status_callback(opts, on_status, NULL));
    c2d_device_client *device = NULL;
    TRY("connect", c2d_device_client_connect(cs, opts, &device));
    c2d_device_options_free(opts);

    for (long handled = 0; count < 0 || handled < count;) {
        c2d_message *msg = NULL;
        c2d_result r = c2d_device_client_receive(device, C2D_TIMEOUT_INFINITE, &msg);
        if (r == C2D_RESULT_CLOSED) break;
        if (r != C2D_RESULT_OK) fail("receive", r);

        const uint8_t *body = NULL;
        size_t len = 0;
        const char *command = NULL;
        uint32_t deliveries = 0;
        TRY("body", c2d_message_body(msg, &body, &len));
        TRY("property", c2d_message_property(msg, "command", &command));
        TRY("delivery count", c2d_message_delivery_count(msg, &deliveries));
        command = command ? command : "";
        if (strcmp(command, "reboot") == 0) {
            printf("device: rebooting (%.*s)\n", (int)len, (const char *)body);
            TRY("complete", c2d_message_complete(msg));
            handled++;
        } else if (strcmp(command, "update") == 0 && deliveries == 0) {
            printf("device: busy, update later (%.*s)\n", (int)len, (const char *)body);
            TRY("abandon", c2d_message_abandon(msg));
        } else if (strcmp(command, "update") == 0) {
            printf("device: updating (%.*s), delivery %u\n", (int)len, (const char *)body, deliveries + 1);
            TRY("complete", c2d_message_complete(msg));
            handled++;
        } else {
            printf("device: unknown command \"%s\", refused\n", command);
            TRY("reject", c2d_message_reject(msg));
            handled++;
        }
        fflush(stdout);
        c2d_message_free(msg);
    }
    TRY("free", c2d_device_client_free(device));
    return 0;
}
