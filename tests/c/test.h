/* Helpers shared by the C tests: checks that name the failing call and c2d's last error,
 * and a local hub on free ports with a temporary data directory. */
#ifndef C2D_TEST_H
#define C2D_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "c2d.h"


/* Fails the test when `call` does not give `want`. */
#define EXPECT(want, call)                                                                  \
    do {                                                                                    \
        c2d_result got_ = (call);                                                           \
        if (got_ != (want)) {                                                               \
            char why_[512];                                                                 \
            c2d_last_error_message(why_, sizeof why_);                                      \
            fprintf(stderr, "%s:%d: %s\n  gave %s, expected %s (last error: %s)\n",         \
                    __FILE__, __LINE__, #call, c2d_result_str(got_), c2d_result_str(want),  \
                    why_);                                                                  \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

#define OK(call) EXPECT(C2D_RESULT_OK, call)

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

#define CHECK_STR(a, b)                                                                     \
    do {                                                                                    \
        const char *a_ = (a), *b_ = (b);                                                    \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                              \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__,   \
                    #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                            \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#if defined(C2D_HUB) /* the firmware test's library has neither the hub nor the service client */

/* A hub on free ports, with a manual clock and small limits (a queue of `depth` messages),
 * in a fresh temporary dir. */
typedef struct test_hub {
    c2d_hub *hub;
    char dir[64];
    uint16_t mqtt, amqp, https;
    const char *ca_pem;
    const char *owner;
} test_hub;

static inline void test_hub_start_with_depth(test_hub *t, uint32_t depth) {
    strcpy(t->dir, "/tmp/c2d-c-test-XXXXXX");
    CHECK(mkdtemp(t->dir) != NULL);
    c2d_hub_options *opts = NULL;
    OK(c2d_hub_options_new(&opts));
    OK(c2d_hub_options_set_data_dir(opts, t->dir));
    OK(c2d_hub_options_set_ports(opts, 0, 0, 0));
    OK(c2d_hub_options_set_durability(opts, C2D_DURABILITY_OS));
    /* 1000-byte messages, 3 deliveries, feedback at once */
    OK(c2d_hub_options_set_limits(opts, depth, 1000, 3, 0));
    OK(c2d_hub_options_use_manual_clock(opts));
    OK(c2d_hub_start(opts, &t->hub));
    c2d_hub_options_free(opts);
    OK(c2d_hub_ports(t->hub, &t->mqtt, &t->amqp, &t->https));
    OK(c2d_hub_text(t->hub, C2D_HUB_TEXT_CA_PEM, &t->ca_pem));
    OK(c2d_hub_text(t->hub, C2D_HUB_TEXT_OWNER_CONNECTION_STRING, &t->owner));
}

/* A hub whose queues hold 5 messages. */
static inline void test_hub_start(test_hub *t) { test_hub_start_with_depth(t, 5); }

static inline void test_hub_free(test_hub *t) {
    OK(c2d_hub_stop(t->hub));
    c2d_hub_free(t->hub);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    CHECK(system(cmd) == 0);
}

static inline uint16_t test_hub_port(const test_hub *t, c2d_transport transport) {
    switch (transport) {
    case C2D_TRANSPORT_MQTT: return t->mqtt;
    case C2D_TRANSPORT_AMQP: return t->amqp;
    default: return t->https;
    }
}

static inline c2d_service_client *test_service(const test_hub *t) {
    c2d_service_options *opts = NULL;
    c2d_service_client *service = NULL;
    OK(c2d_service_options_new(&opts));
    OK(c2d_service_options_set_trusted_ca_pem(opts, (const uint8_t *)t->ca_pem, strlen(t->ca_pem)));
    OK(c2d_service_options_set_port(opts, t->amqp));
    OK(c2d_service_options_set_https_port(opts, t->https));
    OK(c2d_service_client_connect(t->owner, opts, &service));
    c2d_service_options_free(opts);
    return service;
}

/* Device options for `transport` on this hub; the caller may add to them and frees them. */
static inline c2d_device_options *test_device_options(const test_hub *t, c2d_transport transport) {
    c2d_device_options *opts = NULL;
    c2d_retry_policy *retry = NULL;
    OK(c2d_device_options_new(&opts));
    OK(c2d_device_options_set_transport(opts, transport));
    OK(c2d_device_options_set_trusted_ca_pem(opts, (const uint8_t *)t->ca_pem, strlen(t->ca_pem)));
    OK(c2d_device_options_set_port(opts, test_hub_port(t, transport)));
    OK(c2d_device_options_set_poll_interval_ms(opts, 50)); /* HTTPS only */
    OK(c2d_retry_policy_fixed_new(100, 20, &retry));
    OK(c2d_device_options_set_retry(opts, retry));
    c2d_retry_policy_free(retry);
    return opts;
}

static inline c2d_result test_device(const test_hub *t, const char *cs, c2d_transport transport,
                              c2d_device_client **out) {
    c2d_device_options *opts = test_device_options(t, transport);
    c2d_result r = c2d_device_client_connect(cs, opts, out);
    c2d_device_options_free(opts);
    return r;
}

#endif /* C2D_HUB */

#endif
