/* The firmware build of libc2d (`make lib HUB=0 TRANSPORTS=...`: no hub, no service client,
 * only some transports) as firmware uses it. run.sh queues messages on a `c2d hub` process
 * and checks their feedback afterwards; this program:
 *   - checks that c2d_transport_available names exactly the transports of C2D_TEST_TRANSPORTS
 *     and that connecting with any other is C2D_RESULT_UNSUPPORTED, naming the transport;
 *   - receives C2D_TEST_COUNT messages over C2D_TEST_TRANSPORT, checks each body and its
 *     property, and completes each.
 * env: C2D_TEST_CONNECTION_STRING, C2D_TEST_CA_FILE, C2D_TEST_PORT, C2D_TEST_TRANSPORTS
 * (e.g. "mqtt"), C2D_TEST_TRANSPORT (mqtt | mqtt_ws | amqp | amqp_ws | https), C2D_TEST_COUNT,
 * C2D_TEST_BODY. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

static const char *const names[] = {"mqtt", "mqtt_ws", "amqp", "amqp_ws", "https"};
static const c2d_transport codes[] = {C2D_TRANSPORT_MQTT, C2D_TRANSPORT_MQTT_WS, C2D_TRANSPORT_AMQP,
                                      C2D_TRANSPORT_AMQP_WS, C2D_TRANSPORT_HTTPS};
/* the build feature each transport comes with */
static const char *const features[] = {"mqtt", "mqtt", "amqp", "amqp", "https"};

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL) {
        fprintf(stderr, "firmware: set %s\n", name);
        exit(2);
    }
    return v;
}

/* Whether the comma-separated `list` holds `word`. */
static int listed(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    }
    return 0;
}

static c2d_device_options *options(c2d_transport transport) {
    c2d_device_options *opts = NULL;
    c2d_retry_policy *retry = NULL;
    OK(c2d_device_options_new(&opts));
    OK(c2d_device_options_set_transport(opts, transport));
    OK(c2d_device_options_set_trusted_ca_file(opts, env("C2D_TEST_CA_FILE")));
    OK(c2d_device_options_set_port(opts, (uint16_t)atoi(env("C2D_TEST_PORT"))));
    OK(c2d_retry_policy_fixed_new(100, 20, &retry));
    OK(c2d_device_options_set_retry(opts, retry));
    c2d_retry_policy_free(retry);
    return opts;
}

int main(void) {
    const char *cs = env("C2D_TEST_CONNECTION_STRING");
    const char *built = env("C2D_TEST_TRANSPORTS");
    const char *use = env("C2D_TEST_TRANSPORT");
    const char *want_body = env("C2D_TEST_BODY");
    long count = atol(env("C2D_TEST_COUNT"));

    c2d_transport transport = 0;
    int found = 0;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        int in_build = listed(built, features[i]);
        if (c2d_transport_available(codes[i]) != in_build) {
            fprintf(stderr, "firmware: c2d_transport_available(%s) is %d, the build has \"%s\"\n",
                    names[i], !in_build, built);
            return 1;
        }
        if (!in_build) {
            /* refused at once, before any network, with the transport named */
            c2d_device_options *opts = options(codes[i]);
            c2d_device_client *device = NULL;
            EXPECT(C2D_RESULT_UNSUPPORTED, c2d_device_client_connect(cs, opts, &device));
            CHECK(device == NULL);
            c2d_device_options_free(opts);
            char why[256];
            c2d_last_error_message(why, sizeof why);
            CHECK(strstr(why, names[i]) != NULL);
        }
        if (strcmp(names[i], use) == 0) {
            transport = codes[i];
            found = 1;
        }
    }
    CHECK(!c2d_transport_available(99));
    CHECK(found && c2d_transport_available(transport));

    c2d_device_options *opts = options(transport);
    c2d_device_client *device = NULL;
    OK(c2d_device_client_connect(cs, opts, &device));
    c2d_device_options_free(opts);
    for (long i = 0; i < count; i++) {
        c2d_message *m = NULL;
        OK(c2d_device_client_receive(device, 30000, &m));
        const uint8_t *body = NULL;
        size_t len = 0;
        const char *kind = NULL;
        OK(c2d_message_body(m, &body, &len));
        CHECK(len == strlen(want_body) && memcmp(body, want_body, len) == 0);
        OK(c2d_message_property(m, "kind", &kind));
        CHECK_STR(kind, "firmware");
        OK(c2d_message_complete(m));
        c2d_message_free(m);
    }
    OK(c2d_device_client_close(device));
    OK(c2d_device_client_free(device));
    printf("firmware: %ld messages received and completed over %s\n", count, use);
    return 0;
}
