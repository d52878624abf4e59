/* A back-end application in C: sends three commands to a device with ack=full and prints
 * each command's own outcome as the hub reports it; exits non-zero unless every outcome is
 * the expected one (reboot: Success, update: Success after a retry, dance: Rejected).
 *
 * env: IOTHUB_SERVICE_CONNECTION_STRING, IOTHUB_CA_FILE (optional), C2D_DEVICE_ID,
 * C2D_AMQP_PORT and C2D_HTTPS_PORT (optional). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <c2d.h>

static void fail(const char *what, c2d_result r) {
    char why[512];
    c2d_last_error_message(why, sizeof why);
    fprintf(stderr, "backend: %s: %s (%s)\n", what, c2d_result_str(r), why);
    exit(1);
}

#define TRY(what, call)                        \
    do {                                       \
        c2d_result r_ = (call);                \
        if (r_ != C2D_RESULT_OK) fail(what, r_); \
    } while (0)

int main(void) {
    const char *cs = getenv("IOTHUB_SERVICE_CONNECTION_STRING");
    const char *ca = getenv("IOTHUB_CA_FILE");
    const char *device = getenv("C2D_DEVICE_ID");
    const char *amqp_port = getenv("C2D_AMQP_PORT");
    const char *https_port = getenv("C2D_HTTPS_PORT");
    if (!cs || !device) {
        fprintf(stderr, "backend: set IOTHUB_SERVICE_CONNECTION_STRING and C2D_DEVICE_ID\n");
        return 2;
    }
    c2d_service_options *opts = NULL;
    TRY("options", c2d_service_options_new(&opts));
    if (ca) TRY("CA file", c2d_service_options_set_trusted_ca_file(opts, ca));
    if (amqp_port) TRY("AMQP port", c2d_service_options_set_port(opts, (uint16_t)atoi(amqp_port)));
    if (https_port) TRY("HTTPS port", c2d_service_options_set_https_port(opts, (uint16_t)atoi(https_port)));
    c2d_service_client *service = NULL;
    TRY("connect", c2d_service_client_connect(cs, opts, &service));
    c2d_service_options_free(opts);

    static const struct {
        const char *command;
        c2d_feedback_status expected;
    } commands[] = {
        {"reboot", C2D_FEEDBACK_STATUS_SUCCESS},
        {"update", C2D_FEEDBACK_STATUS_SUCCESS},
        {"dance", C2D_FEEDBACK_STATUS_REJECTED},
    };
    enum { N = sizeof commands / sizeof commands[0] };
    c2d_sent_message *sent[N];
    for (size_t i = 0; i < N; i++) {
        char body[64];
        snprintf(body, sizeof body, "%s now", commands[i].command);
        c2d_message *m = NULL;
        TRY("message", c2d_message_new((const uint8_t *)body, strlen(body), &m));
        TRY("ack", c2d_message_set_ack(m, C2D_ACK_FULL));
        TRY("property", c2d_message_set_property(m, "command", commands[i].command));
        TRY("ttl", c2d_message_set_ttl_ms(m, 600000));
        TRY("send", c2d_service_client_send(service, device, m, &sent[i]));
        c2d_message_free(m);
        const char *id = NULL;
        TRY("message id", c2d_sent_message_id(sent[i], &id));
        printf("backend: sent %s as %s\n", commands[i].command, id);
    }
    int wrong = 0;
    for (size_t i = 0; i < N; i++) {
        c2d_feedback_record *record = NULL;
        c2d_feedback_status status;
        const char *description = NULL;
        TRY("outcome", c2d_sent_message_wait_outcome(sent[i], 60000, &record));
        TRY("status", c2d_feedback_record_status(record, &status));
        TRY("description", c2d_feedback_record_description(record, &description));
        printf("backend: %s: %s (%s)\n", commands[i].command, c2d_feedback_status_str(status), description);
        if (status != commands[i].expected) {
            fprintf(stderr, "backend: %s: expected %s\n", commands[i].command,
                    c2d_feedback_status_str(commands[i].expected));
            wrong++;
        }
        c2d_feedback_record_free(record);
        c2d_sent_message_free(sent[i]);
    }
    c2d_service_client_free(service);
    return wrong ? 1 : 0;
}
