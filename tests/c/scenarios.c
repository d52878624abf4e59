/* The scenario list of docs/architecture.md through the C API, on every device transport,
 * against a local hub started by the test on free ports: complete; reject -> Rejected;
 * abandon -> redelivery; max delivery -> DeliveryCountExceeded; TTL -> Expired; purge ->
 * Purged; lock expiry -> redelivery; queue full; too large; unknown device; bad token;
 * closed client. Also the message callback and connection status callback, feedback
 * records, the registry, X.509 devices (their certificate, another device's, none), and HTTP
 * proxies (every transport one carries, wrong proxy credentials, plain MQTT). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "test.h"
#include "proxy.h"

#ifndef WAIT_MS
#define WAIT_MS 15000
#endif

static void step(const char *what) {
    if (getenv("C2D_TEST_VERBOSE")) fprintf(stderr, "  %s\n", what);
}

static c2d_message *receive(c2d_device_client *device) {
    c2d_message *m = NULL;
    OK(c2d_device_client_receive(device, WAIT_MS, &m));
    return m;
}

static void check_body(const c2d_message *m, const char *want) {
    const uint8_t *body = NULL;
    size_t len = 0;
    OK(c2d_message_body(m, &body, &len));
    CHECK(len == strlen(want) && memcmp(body, want, len) == 0);
}

static c2d_message *new_message(const char *body, c2d_ack ack) {
    c2d_message *m = NULL;
    OK(c2d_message_new((const uint8_t *)body, strlen(body), &m));
    OK(c2d_message_set_ack(m, ack));
    return m;
}

static c2d_sent_message *send_text(c2d_service_client *s, const char *device, const char *body,
                                   c2d_ack ack) {
    c2d_message *m = new_message(body, ack);
    c2d_sent_message *sent = NULL;
    OK(c2d_service_client_send(s, device, m, &sent));
    c2d_message_free(m);
    return sent;
}

static c2d_feedback_status outcome(c2d_sent_message *sent) {
    c2d_feedback_record *r = NULL;
    c2d_feedback_status status;
    OK(c2d_sent_message_wait_outcome(sent, WAIT_MS, &r));
    OK(c2d_feedback_record_status(r, &status));
    const char *id = NULL, *mine = NULL;
    OK(c2d_feedback_record_original_message_id(r, &id));
    OK(c2d_sent_message_id(sent, &mine));
    CHECK_STR(id, mine);
    c2d_feedback_record_free(r);
    c2d_sent_message_free(sent);
    return status;
}

static void scenarios(c2d_transport transport) {
    test_hub t;
    test_hub_start(&t);
    c2d_service_client *service = test_service(&t);
    char *cs = NULL;
    OK(c2d_service_client_create_device(service, "dev1", &cs));
    c2d_device_client *device = NULL;
    OK(test_device(&t, cs, transport, &device));
    /* every settlement (AMQP and HTTPS), not MQTT's complete only */
    bool amqp = transport == C2D_TRANSPORT_AMQP || transport == C2D_TRANSPORT_AMQP_WS ||
                transport == C2D_TRANSPORT_HTTPS;
    c2d_connection_status status;
    OK(c2d_device_client_connection_status(device, &status));
    CHECK(status == C2D_CONNECTION_STATUS_CONNECTED);

    step("complete -> Success, with the properties kept");
    c2d_message *m = new_message("hello", C2D_ACK_FULL);
    OK(c2d_message_set_property(m, "colour", "blue"));
    OK(c2d_message_set_property(m, "size", "XL"));
    OK(c2d_message_set_correlation_id(m, "c-1"));
    OK(c2d_message_set_content_type(m, "text/plain"));
    OK(c2d_message_set_ttl_ms(m, 600000));
    c2d_sent_message *sent = NULL;
    OK(c2d_service_client_send(service, "dev1", m, &sent));
    c2d_message_free(m);
    m = receive(device);
    check_body(m, "hello");
    const char *value = NULL, *name = NULL, *sent_id = NULL;
    OK(c2d_message_property(m, "colour", &value));
    CHECK_STR(value, "blue");
    OK(c2d_message_property(m, "missing", &value));
    CHECK(value == NULL);
    size_t count = 0;
    OK(c2d_message_property_count(m, &count));
    CHECK(count == 2);
    OK(c2d_message_property_at(m, 1, &name, &value));
    CHECK_STR(name, "size");
    CHECK_STR(value, "XL");
    OK(c2d_message_correlation_id(m, &value));
    CHECK_STR(value, "c-1");
    OK(c2d_message_content_type(m, &value));
    CHECK_STR(value, "text/plain");
    OK(c2d_message_message_id(m, &value));
    OK(c2d_sent_message_id(sent, &sent_id));
    CHECK_STR(value, sent_id);
    c2d_ack ack;
    OK(c2d_message_ack(m, &ack));
    CHECK(ack == C2D_ACK_FULL);
    int64_t expiry = 0;
    OK(c2d_message_expiry_time_ms(m, &expiry));
    CHECK(expiry > (int64_t)time(NULL) * 1000);
    uint32_t deliveries = 99;
    OK(c2d_message_delivery_count(m, &deliveries));
    CHECK(deliveries == 0);
    OK(c2d_message_complete(m));
    EXPECT(C2D_RESULT_ALREADY_SETTLED, c2d_message_complete(m));
    c2d_message_free(m);
    CHECK(outcome(sent) == C2D_FEEDBACK_STATUS_SUCCESS);

    step("reject -> Rejected; abandon -> redelivery; max delivery -> DeliveryCountExceeded");
    sent = send_text(service, "dev1", "reject me", C2D_ACK_FULL);
    m = receive(device);
    if (amqp) {
        OK(c2d_message_reject(m));
        c2d_message_free(m);
        CHECK(outcome(sent) == C2D_FEEDBACK_STATUS_REJECTED);
        sent = send_text(service, "dev1", "abandon me", C2D_ACK_FULL);
        for (uint32_t n = 0; n < 3; n++) {
            m = receive(device);
            check_body(m, "abandon me");
            OK(c2d_message_delivery_count(m, &deliveries));
            CHECK(deliveries == n);
            OK(c2d_message_abandon(m));
            c2d_message_free(m);
        }
        CHECK(outcome(sent) == C2D_FEEDBACK_STATUS_DELIVERY_COUNT_EXCEEDED);
    } else {
        /* MQTT cannot reject or abandon: refused, nothing sent, nothing changed; the message
         * is still the application's to complete */
        EXPECT(C2D_RESULT_UNSUPPORTED, c2d_message_reject(m));
        EXPECT(C2D_RESULT_UNSUPPORTED, c2d_message_abandon(m));
        OK(c2d_message_complete(m));
        EXPECT(C2D_RESULT_ALREADY_SETTLED, c2d_message_complete(m));
        c2d_message_free(m);
        CHECK(outcome(sent) == C2D_FEEDBACK_STATUS_SUCCESS);
    }

    step("unknown device; TTL -> Expired (the hub's clock passes the expiry)");
    m = new_message("x", C2D_ACK_NONE);
    EXPECT(C2D_RESULT_DEVICE_NOT_FOUND, c2d_service_client_send(service, "nobody", m, NULL));
    char *offline = NULL;
    OK(c2d_hub_create_device(t.hub, "offline", &offline));
    c2d_string_free(offline);
    c2d_message *late = new_message("late", C2D_ACK_NEGATIVE);
    OK(c2d_message_set_ttl_ms(late, 30000));
    OK(c2d_service_client_send(service, "offline", late, &sent));
    c2d_message_free(late);
    /* the expiry counts from the real time of the send, which runs ahead of the hub's manual
     * clock by however long the test has taken so far (a lot, under valgrind) */
    OK(c2d_hub_advance_clock(t.hub, 300000));
    CHECK(outcome(sent) == C2D_FEEDBACK_STATUS_EXPIRED);

    step("purge -> Purged");
    sent = send_text(service, "offline", "p", C2D_ACK_FULL);
    uint64_t purged = 0;
    OK(c2d_service_client_purge(service, "offline", &purged));
    CHECK(purged == 1);
    CHECK(outcome(sent) == C2D_FEEDBACK_STATUS_PURGED);

    step("queue full (depth 5); too large (1000 bytes)");
    for (int i = 0; i < 5; i++) OK(c2d_service_client_send(service, "offline", m, NULL));
    size_t depth = 0;
    OK(c2d_hub_queue_depth(t.hub, "offline", &depth));
    CHECK(depth == 5);
    EXPECT(C2D_RESULT_QUEUE_FULL, c2d_service_client_send(service, "offline", m, NULL));
    c2d_message_free(m);
    static uint8_t big[2000];
    OK(c2d_message_new(big, sizeof big, &m));
    EXPECT(C2D_RESULT_MESSAGE_TOO_LARGE, c2d_service_client_send(service, "dev1", m, NULL));
    c2d_message_free(m);

    step("lock expiry -> redelivery (the first delivery is given up by freeing it unsettled)");
    c2d_sent_message_free(send_text(service, "dev1", "slow", C2D_ACK_NONE));
    c2d_message *first = receive(device);
    OK(c2d_hub_advance_clock(t.hub, 61000));
    m = receive(device);
    check_body(m, "slow");
    OK(c2d_message_complete(m));
    c2d_message_free(m);
    if (transport == C2D_TRANSPORT_HTTPS) {
        /* the hub ended the first lock: its token is refused (412) */
        EXPECT(C2D_RESULT_MESSAGE_LOCK_LOST, c2d_message_complete(first));
    }
    c2d_message_free(first);

    step("every feedback record, through feedback_receive");
    c2d_feedback_record *record = NULL;
    EXPECT(C2D_RESULT_TIMEOUT, c2d_service_client_feedback_receive(service, 0, &record));
    sent = send_text(service, "dev1", "watched", C2D_ACK_POSITIVE);
    m = receive(device);
    OK(c2d_message_complete(m));
    c2d_message_free(m);
    OK(c2d_sent_message_id(sent, &sent_id));
    for (;;) {
        OK(c2d_service_client_feedback_receive(service, WAIT_MS, &record));
        const char *id = NULL, *dev = NULL;
        OK(c2d_feedback_record_original_message_id(record, &id));
        if (strcmp(id, sent_id) == 0) {
            c2d_feedback_status s;
            OK(c2d_feedback_record_status(record, &s));
            CHECK(s == C2D_FEEDBACK_STATUS_SUCCESS);
            OK(c2d_feedback_record_device_id(record, &dev));
            CHECK_STR(dev, "dev1");
            c2d_feedback_record_free(record);
            break;
        }
        c2d_feedback_record_free(record);
    }
    c2d_sent_message_free(sent);

    step("registry: delete, then the device is gone");
    char *temp = NULL;
    OK(c2d_service_client_create_device(service, "temp", &temp));
    CHECK(strstr(temp, "DeviceId=temp;") != NULL);
    c2d_string_free(temp);
    OK(c2d_service_client_delete_device(service, "temp"));
    EXPECT(C2D_RESULT_DEVICE_NOT_FOUND, c2d_service_client_delete_device(service, "temp"));

    step("bad token");
    char bad[512];
    const char *key = strstr(cs, "SharedAccessKey=");
    CHECK(key != NULL);
    snprintf(bad, sizeof bad, "%.*sSharedAccessKey=AAAA%s", (int)(key - cs), cs,
             key + strlen("SharedAccessKey="));
    c2d_device_client *intruder = NULL;
    EXPECT(C2D_RESULT_UNAUTHORIZED, test_device(&t, bad, transport, &intruder));
    CHECK(intruder == NULL);

    step("closed clients");
    OK(c2d_device_client_close(device));
    EXPECT(C2D_RESULT_CLOSED, c2d_device_client_receive(device, 0, &m));
    OK(c2d_device_client_close(device));
    OK(c2d_device_client_free(device));
    OK(c2d_service_client_close(service));
    m = new_message("x", C2D_ACK_NONE);
    EXPECT(C2D_RESULT_CLOSED, c2d_service_client_send(service, "dev1", m, NULL));
    c2d_message_free(m);
    c2d_service_client_free(service);
    c2d_string_free(cs);
    test_hub_free(&t);
}

/* The callback form: messages and status changes on the client's own thread. */
typedef struct seen {
    pthread_mutex_t lock;
    /* how long each callback takes before it completes its message */
    long hold_ms;
    int completed;
    int statuses;
    c2d_connection_status first_status;
    bool in_callback;
    pthread_t thread;
} seen;

static void on_message(void *user_data, c2d_message *message) {
    seen *s = user_data;
    pthread_mutex_lock(&s->lock);
    s->in_callback = true;
    s->thread = pthread_self();
    long hold = s->hold_ms;
    pthread_mutex_unlock(&s->lock);
    if (hold > 0) sleep_ms(hold);
    OK(c2d_message_complete(message));
    c2d_message_free(message);
    pthread_mutex_lock(&s->lock);
    s->completed++;
    s->in_callback = false;
    pthread_mutex_unlock(&s->lock);
}

static void on_status(void *user_data, c2d_connection_status status, const char *reason) {
    seen *s = user_data;
    (void)reason;
    pthread_mutex_lock(&s->lock);
    if (s->statuses++ == 0) s->first_status = status;
    pthread_mutex_unlock(&s->lock);
}

static void callbacks(c2d_transport transport) {
    test_hub t;
    test_hub_start(&t);
    c2d_service_client *service = test_service(&t);
    char *cs = NULL;
    OK(c2d_hub_create_device(t.hub, "cb", &cs));
    seen s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    c2d_device_options *opts = test_device_options(&t, transport);
    OK(c2d_device_options_set_message_callback(opts, on_message, &s));
    OK(c2d_device_options_set_connection_status_callback(opts, on_status, &s));
    c2d_device_client *device = NULL;
    OK(c2d_device_client_connect(cs, opts, &device));
    c2d_device_options_free(opts);
    c2d_message *m = NULL;
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_client_receive(device, 0, &m));
    for (int i = 0; i < 3; i++) c2d_sent_message_free(send_text(service, "cb", "ping", C2D_ACK_NONE));
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        pthread_mutex_lock(&s.lock);
        int done = s.completed;
        pthread_mutex_unlock(&s.lock);
        if (done == 3) break;
        sleep_ms(10);
    }
    OK(c2d_device_client_free(device));
    /* after _free, no callback runs or will run */
    pthread_mutex_lock(&s.lock);
    CHECK(s.completed == 3);
    CHECK(!s.in_callback);
    CHECK(!pthread_equal(s.thread, pthread_self()));
    CHECK(s.statuses >= 1 && s.first_status == C2D_CONNECTION_STATUS_CONNECTED);
    pthread_mutex_unlock(&s.lock);
    /* the completions reached the hub (it commits them a moment after they arrive) */
    size_t depth = 99;
    for (int waited = 0; waited < WAIT_MS && depth != 0; waited += 10) {
        OK(c2d_hub_queue_depth(t.hub, "cb", &depth));
        if (depth != 0) sleep_ms(10);
    }
    CHECK(depth == 0);

    /* freed while messages wait for the callback: none is lost; the hub has them again for
     * the next client (at once; over HTTPS, which holds no connection, when their locks end) */
    s.completed = 0;
    s.hold_ms = 300;
    opts = test_device_options(&t, transport);
    OK(c2d_device_options_set_message_callback(opts, on_message, &s));
    OK(c2d_device_client_connect(cs, opts, &device));
    c2d_device_options_free(opts);
    for (int i = 0; i < 3; i++) c2d_sent_message_free(send_text(service, "cb", "held", C2D_ACK_NONE));
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        pthread_mutex_lock(&s.lock);
        bool running = s.in_callback;
        pthread_mutex_unlock(&s.lock);
        if (running) break;
        sleep_ms(10);
    }
    OK(c2d_device_client_free(device));
    pthread_mutex_lock(&s.lock);
    int completed = s.completed;
    pthread_mutex_unlock(&s.lock);
    CHECK(completed == 1);
    if (transport == C2D_TRANSPORT_HTTPS) OK(c2d_hub_advance_clock(t.hub, 61000));
    OK(test_device(&t, cs, transport, &device));
    for (int i = completed; i < 3; i++) {
        m = receive(device);
        check_body(m, "held");
        OK(c2d_message_complete(m));
        c2d_message_free(m);
    }
    EXPECT(C2D_RESULT_TIMEOUT, c2d_device_client_receive(device, 500, &m));
    OK(c2d_device_client_free(device));
    c2d_service_client_free(service);
    c2d_string_free(cs);
    test_hub_free(&t);
}

/* X.509: a selfSigned device receives with its certificate; another device's certificate
 * is refused by the hub; an x509=true connection string without a certificate is refused at
 * once. */
static void x509(c2d_transport transport) {
    test_hub t;
    test_hub_start(&t);
    c2d_service_client *service = test_service(&t);
    char *cs = NULL, *cert = NULL, *key = NULL, *other_cs = NULL, *other_cert = NULL,
         *other_key = NULL;
    OK(c2d_hub_create_x509_device(t.hub, "x1", &cs, &cert, &key));
    CHECK(strstr(cs, ";x509=true") != NULL);
    OK(c2d_hub_create_x509_device(t.hub, "x2", &other_cs, &other_cert, &other_key));

    c2d_device_options *opts = test_device_options(&t, transport);
    OK(c2d_device_options_set_client_certificate_pem(opts, (const uint8_t *)cert, strlen(cert),
                                                      (const uint8_t *)key, strlen(key)));
    c2d_device_client *device = NULL;
    OK(c2d_device_client_connect(cs, opts, &device));
    c2d_device_options_free(opts);
    c2d_sent_message *sent = send_text(service, "x1", "by certificate", C2D_ACK_FULL);
    c2d_message *m = receive(device);
    check_body(m, "by certificate");
    OK(c2d_message_complete(m));
    c2d_message_free(m);
    CHECK(outcome(sent) == C2D_FEEDBACK_STATUS_SUCCESS); /* frees sent */
    OK(c2d_device_client_close(device));
    OK(c2d_device_client_free(device));

    /* x2's certificate does not authenticate x1 (one attempt: no retry for a refusal) */
    opts = test_device_options(&t, transport);
    OK(c2d_device_options_set_client_certificate_pem(opts, (const uint8_t *)other_cert,
                                                      strlen(other_cert), (const uint8_t *)other_key,
                                                      strlen(other_key)));
    device = NULL;
    EXPECT(C2D_RESULT_UNAUTHORIZED, c2d_device_client_connect(cs, opts, &device));
    CHECK(device == NULL);
    c2d_device_options_free(opts);

    /* x509=true and no certificate; a key that is not PEM */
    opts = test_device_options(&t, transport);
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_client_connect(cs, opts, &device));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT,
           c2d_device_options_set_client_certificate_pem(opts, (const uint8_t *)cert, strlen(cert),
                                                         (const uint8_t *)"not a key", 9));
    c2d_device_options_free(opts);

    c2d_string_free(cs);
    c2d_string_free(cert);
    c2d_string_free(key);
    c2d_string_free(other_cs);
    c2d_string_free(other_cert);
    c2d_string_free(other_key);
    OK(c2d_service_client_close(service));
    c2d_service_client_free(service);
    test_hub_free(&t);
}

/* Device and service through a real CONNECT proxy with basic authentication. */
static void proxies(void) {
    static test_proxy proxy;
    test_proxy_start(&proxy);
    char url[128], wrong[128];
    test_proxy_url(&proxy, "secret", url, sizeof url);
    test_proxy_url(&proxy, "wrong", wrong, sizeof wrong);
    test_hub t;
    test_hub_start(&t);
    c2d_service_options *sopts = NULL;
    c2d_service_client *service = NULL;
    OK(c2d_service_options_new(&sopts));
    OK(c2d_service_options_set_trusted_ca_pem(sopts, (const uint8_t *)t.ca_pem, strlen(t.ca_pem)));
    OK(c2d_service_options_set_https_port(sopts, t.https));
    OK(c2d_service_options_set_transport(sopts, C2D_SERVICE_TRANSPORT_AMQP_WS));
    OK(c2d_service_options_set_proxy(sopts, url));
    OK(c2d_service_client_connect(t.owner, sopts, &service));
    c2d_service_options_free(sopts);
    CHECK(test_proxy_count(&proxy, false) > 0);
    char *cs = NULL;
    OK(c2d_service_client_create_device(service, "dev1", &cs));

    static const c2d_transport carried[] = {C2D_TRANSPORT_MQTT_WS, C2D_TRANSPORT_AMQP_WS,
                                            C2D_TRANSPORT_HTTPS};
    for (size_t i = 0; i < sizeof carried / sizeof carried[0]; i++) {
        int before = test_proxy_count(&proxy, false);
        c2d_device_options *opts = test_device_options(&t, carried[i]);
        OK(c2d_device_options_set_proxy(opts, url));
        c2d_device_client *device = NULL;
        OK(c2d_device_client_connect(cs, opts, &device));
        c2d_device_options_free(opts);
        CHECK(test_proxy_count(&proxy, false) > before);
        c2d_sent_message *sent = send_text(service, "dev1", "via proxy", C2D_ACK_FULL);
        c2d_message *m = receive(device);
        check_body(m, "via proxy");
        OK(c2d_message_complete(m));
        c2d_message_free(m);
        CHECK(outcome(sent) == C2D_FEEDBACK_STATUS_SUCCESS); /* frees sent */
        OK(c2d_device_client_close(device));
        OK(c2d_device_client_free(device));

        int refused = test_proxy_count(&proxy, true);
        opts = test_device_options(&t, carried[i]);
        OK(c2d_device_options_set_proxy(opts, wrong));
        device = NULL;
        EXPECT(C2D_RESULT_UNAUTHORIZED, c2d_device_client_connect(cs, opts, &device));
        c2d_device_options_free(opts);
        CHECK(test_proxy_count(&proxy, true) > refused);
    }

    /* a proxy cannot carry plain MQTT; a proxy URL that is not an HTTP proxy's */
    c2d_device_options *opts = test_device_options(&t, C2D_TRANSPORT_MQTT);
    OK(c2d_device_options_set_proxy(opts, url));
    c2d_device_client *device = NULL;
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_client_connect(cs, opts, &device));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_proxy(opts, "socks5://127.0.0.1:1"));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_proxy(opts, NULL));
    c2d_device_options_free(opts);

    c2d_string_free(cs);
    OK(c2d_service_client_close(service));
    c2d_service_client_free(service);
    test_hub_free(&t);
    test_proxy_stop(&proxy);
}

/* The live page's address: the hub's HTTPS port, and the token the hub wrote beside its data. */
static void hub_page(void) {
    test_hub t;
    test_hub_start(&t);
    const char *url = NULL;
    OK(c2d_hub_text(t.hub, C2D_HUB_TEXT_UI_URL, &url));
    char want[128], path[600], token[128] = {0};
    snprintf(want, sizeof want, "https://localhost:%u/ui/?token=", (unsigned)t.https);
    CHECK(strncmp(url, want, strlen(want)) == 0);
    snprintf(path, sizeof path, "%s/ui-token", t.dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    CHECK(fgets(token, sizeof token, f) != NULL);
    fclose(f);
    CHECK(strlen(token) == 48);
    CHECK_STR(url + strlen(want), token);
    test_hub_free(&t);
}

/* --- one message to many devices ----------------------------------------------------- */

#define FLEET 300

typedef struct fan_out_seen {
    int results[FLEET]; /* the c2d_result of each device, -1 before its callback */
    int calls;
    int stop_after; /* 0: never stop */
} fan_out_seen;

static int on_sent(void *context, const char *device_id, c2d_result result, c2d_sent_message *sent,
                   const char *message) {
    fan_out_seen *seen = context;
    int i = atoi(device_id + 3);
    CHECK(i >= 0 && i < FLEET && seen->results[i] == -1); /* each device once */
    seen->results[i] = (int)result;
    if (result == C2D_RESULT_OK) {
        const char *id = NULL;
        char want[64];
        OK(c2d_sent_message_id(sent, &id));
        snprintf(want, sizeof want, "cmd-1:%s", device_id);
        CHECK_STR(id, want);
        c2d_sent_message_free(sent);
    } else {
        CHECK(sent == NULL && message != NULL && message[0] != '\0');
    }
    seen->calls++;
    return seen->stop_after != 0 && seen->calls >= seen->stop_after;
}

static void fleet_ids(char ids[FLEET][8], const char *ptrs[FLEET], const char *prefix) {
    for (int i = 0; i < FLEET; i++) {
        snprintf(ids[i], sizeof ids[i], "%s%03d", prefix, i);
        ptrs[i] = ids[i];
    }
}

static c2d_message *fan_message(const char *id) {
    c2d_message *m = NULL;
    OK(c2d_message_new((const uint8_t *)"reboot", 6, &m));
    if (id) OK(c2d_message_set_message_id(m, id));
    return m;
}

/* 300 devices, 10 unregistered and 5 with a full queue: the exact result of each, and the
 * summary; a device then receives its own message. */
static void fan_out(void) {
    test_hub t;
    test_hub_start_with_depth(&t, 2);
    c2d_service_client *service = test_service(&t);
    static char ids[FLEET][8];
    const char *ptrs[FLEET];
    fleet_ids(ids, ptrs, "dev");
    char *dev150 = NULL;
    for (int i = 10; i < FLEET; i++) {
        char *cs = NULL;
        OK(c2d_hub_create_device(t.hub, ids[i], &cs));
        if (i == 150) dev150 = cs; else c2d_string_free(cs);
    }
    c2d_message *filler = fan_message(NULL);
    for (int i = 10; i < 15; i++) {
        OK(c2d_service_client_send(service, ids[i], filler, NULL));
        OK(c2d_service_client_send(service, ids[i], filler, NULL));
    }
    c2d_message_free(filler);

    c2d_fan_out_options *opts = NULL;
    OK(c2d_fan_out_options_new(&opts));
    OK(c2d_fan_out_options_set_in_flight(opts, 16));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_fan_out_options_set_in_flight(opts, 0));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_fan_out_options_set_tier(opts, C2D_TIER_F1, 2));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_fan_out_options_set_rate(opts, -1));
    fan_out_seen seen = {.calls = 0};
    for (int i = 0; i < FLEET; i++) seen.results[i] = -1;
    c2d_message *m = fan_message("cmd-1");
    c2d_fan_out_summary summary;
    OK(c2d_service_client_send_many(service, ptrs, FLEET, m, opts, on_sent, &seen, &summary));
    c2d_fan_out_options_free(opts);
    CHECK(seen.calls == FLEET);
    for (int i = 0; i < FLEET; i++) {
        size_t depth = 0;
        OK(c2d_hub_queue_depth(t.hub, ids[i], &depth));
        if (i < 10) {
            CHECK(seen.results[i] == C2D_RESULT_DEVICE_NOT_FOUND && depth == 0);
        } else if (i < 15) {
            CHECK(seen.results[i] == C2D_RESULT_QUEUE_FULL && depth == 2);
        } else {
            CHECK(seen.results[i] == C2D_RESULT_OK && depth == 1);
        }
    }
    CHECK(summary.sent == 285 && summary.failed == 15);
    CHECK(summary.failed_by_result[C2D_RESULT_DEVICE_NOT_FOUND] == 10);
    CHECK(summary.failed_by_result[C2D_RESULT_QUEUE_FULL] == 5);
    CHECK(summary.throttled == 0 && summary.stopped == C2D_RESULT_OK && !summary.cancelled);
    c2d_message_free(m);

    c2d_device_client *device = NULL;
    c2d_message *got = NULL;
    const char *id = NULL;
    OK(test_device(&t, dev150, C2D_TRANSPORT_MQTT, &device));
    OK(c2d_device_client_receive(device, 15000, &got));
    OK(c2d_message_message_id(got, &id));
    CHECK_STR(id, "cmd-1:dev150");
    OK(c2d_message_complete(got));
    c2d_message_free(got);
    OK(c2d_device_client_free(device));
    c2d_string_free(dev150);
    c2d_service_client_free(service);
    test_hub_free(&t);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A hub throttled as S3 x 1 (83.3 sends a second, a 200 ms backlog) refuses nothing of a run
 * paced to that tier; a run stopped by its callback starts no more sends. */
static void fan_out_paced(void) {
    char dir[] = "/tmp/c2d-c-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    c2d_hub_options *hopts = NULL;
    OK(c2d_hub_options_new(&hopts));
    OK(c2d_hub_options_set_data_dir(hopts, dir));
    OK(c2d_hub_options_set_ports(hopts, 0, 0, 0));
    OK(c2d_hub_options_set_durability(hopts, C2D_DURABILITY_OS));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_hub_options_set_tier(hopts, 9, 1, 20));
    OK(c2d_hub_options_set_tier(hopts, C2D_TIER_S3, 1, 200));
    test_hub t;
    OK(c2d_hub_start(hopts, &t.hub));
    c2d_hub_options_free(hopts);
    strcpy(t.dir, dir);
    OK(c2d_hub_ports(t.hub, &t.mqtt, &t.amqp, &t.https));
    OK(c2d_hub_text(t.hub, C2D_HUB_TEXT_CA_PEM, &t.ca_pem));
    OK(c2d_hub_text(t.hub, C2D_HUB_TEXT_OWNER_CONNECTION_STRING, &t.owner));
    static char ids[FLEET][8];
    const char *ptrs[FLEET];
    fleet_ids(ids, ptrs, "dev");
    for (int i = 0; i < 100; i++) {
        char *cs = NULL;
        OK(c2d_hub_create_device(t.hub, ids[i], &cs));
        c2d_string_free(cs);
    }
    c2d_service_client *service = test_service(&t);
    c2d_fan_out_options *opts = NULL;
    OK(c2d_fan_out_options_new(&opts));
    OK(c2d_fan_out_options_set_tier(opts, C2D_TIER_S3, 1));
    fan_out_seen seen = {.calls = 0};
    for (int i = 0; i < FLEET; i++) seen.results[i] = -1;
    c2d_message *m = fan_message("cmd-1");
    c2d_fan_out_summary summary;
    long long started = now_ms();
    OK(c2d_service_client_send_many(service, ptrs, 100, m, opts, on_sent, &seen, &summary));
    long long elapsed = now_ms() - started;
    uint64_t refused = 99;
    OK(c2d_hub_refusals(t.hub, "throttled", &refused));
    CHECK(summary.sent == 100 && summary.throttled == 0 && refused == 0);
    CHECK(elapsed >= 1180); /* 99 intervals of 12 ms at least */

    /* stopped by the callback after 20: the sends in flight are reported, no more start */
    OK(c2d_fan_out_options_set_rate(opts, 50)); /* under the hub's 83.3 */
    fan_out_seen stopped = {.calls = 0, .stop_after = 20};
    for (int i = 0; i < FLEET; i++) stopped.results[i] = -1;
    OK(c2d_service_client_send_many(service, ptrs, 100, m, opts, on_sent, &stopped, &summary));
    CHECK(summary.cancelled && summary.sent == (uint64_t)stopped.calls && stopped.calls < 40);
    size_t total = 0;
    for (int i = 0; i < 100; i++) {
        size_t depth = 0;
        OK(c2d_hub_queue_depth(t.hub, ids[i], &depth));
        total += depth;
    }
    CHECK(total == 100 + (size_t)stopped.calls);
    c2d_fan_out_options_free(opts);
    c2d_message_free(m);
    c2d_service_client_free(service);
    test_hub_free(&t);
}

/* Faults on demand as a C device and service see them: a dropped connection and the
 * reconnect, a lost acknowledgement that brings the message again (handed over once with
 * duplicate suppression), refused sends and their errors. */
/* Receives and completes `device`'s messages until the one with body `until`. */
struct completer {
    c2d_device_client *device;
    const char *until;
};

static void *complete_until(void *arg) {
    struct completer *c = arg;
    for (;;) {
        c2d_message *m = receive(c->device);
        const uint8_t *body = NULL;
        size_t len = 0;
        OK(c2d_message_body(m, &body, &len));
        int last = len == strlen(c->until) && memcmp(body, c->until, len) == 0;
        OK(c2d_message_complete(m));
        c2d_message_free(m);
        if (last) {
            return NULL;
        }
    }
}

static void faults(c2d_transport transport) {
    test_hub t;
    test_hub_start(&t);
    char *cs = NULL;
    OK(c2d_hub_create_device(t.hub, "dev", &cs));
    c2d_device_options *dopts = test_device_options(&t, transport);
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_duplicates_file(dopts, NULL));
    OK(c2d_device_options_set_suppress_duplicates(dopts, true));
    c2d_device_client *device = NULL;
    OK(c2d_device_client_connect(cs, dopts, &device));
    c2d_device_options_free(dopts);
    c2d_service_client *service = test_service(&t);

    step("drop: the device reconnects by itself and receives");
    size_t dropped = 0;
    OK(c2d_hub_fault_drop(t.hub, "dev", false, &dropped));
    CHECK(dropped == 1);
    c2d_connection_status status = C2D_CONNECTION_STATUS_CONNECTED;
    for (int i = 0; i < 300; i++) { /* it sees the drop, then connects again */
        OK(c2d_device_client_connection_status(device, &status));
        if (status != C2D_CONNECTION_STATUS_CONNECTED) break;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    CHECK(status != C2D_CONNECTION_STATUS_CONNECTED);
    c2d_message *m1 = new_message("first", C2D_ACK_NONE);
    OK(c2d_message_set_message_id(m1, "m1"));
    OK(c2d_service_client_send(service, "dev", m1, NULL));
    c2d_message_free(m1);
    c2d_message *got = receive(device);
    check_body(got, "first");

    step("lose-acks: the message comes again, and is not handed over twice");
    OK(c2d_hub_fault_lose_acks(t.hub, "dev", 1));
    OK(c2d_message_complete(got));
    c2d_message_free(got);
    uint64_t lost = 0;
    for (int i = 0; i < 1500 && lost == 0; i++) {
        OK(c2d_hub_acks_lost(t.hub, &lost));
        if (lost == 0) nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    CHECK(lost == 1);
    size_t depth = 0, expired = 0;
    OK(c2d_hub_queue_depth(t.hub, "dev", &depth));
    CHECK(depth == 1);
    OK(c2d_hub_fault_expire_locks(t.hub, &expired));
    CHECK(expired == 1);
    c2d_message *m2 = new_message("second", C2D_ACK_NONE);
    OK(c2d_message_set_message_id(m2, "m2"));
    OK(c2d_service_client_send(service, "dev", m2, NULL));
    c2d_message_free(m2);
    got = receive(device);
    check_body(got, "second"); /* not "first" again */
    OK(c2d_message_complete(got));
    c2d_message_free(got);
    uint64_t suppressed = 0;
    OK(c2d_device_client_duplicates_suppressed(device, &suppressed));
    CHECK(suppressed == 1);

    step("refuse-sends: the error of each, the next send goes through");
    c2d_service_options *sopts = NULL;
    c2d_retry_policy *none = NULL;
    OK(c2d_service_options_new(&sopts));
    OK(c2d_service_options_set_trusted_ca_pem(sopts, (const uint8_t *)t.ca_pem, strlen(t.ca_pem)));
    OK(c2d_service_options_set_port(sopts, t.amqp));
    OK(c2d_retry_policy_none_new(&none));
    OK(c2d_service_options_set_retry(sopts, none));
    c2d_retry_policy_free(none);
    c2d_service_client *once = NULL;
    OK(c2d_service_client_connect(t.owner, sopts, &once));
    c2d_service_options_free(sopts);
    c2d_message *x = new_message("x", C2D_ACK_NONE);
    OK(c2d_hub_fault_refuse_sends(t.hub, C2D_SEND_REFUSAL_THROTTLED, 1, 0));
    EXPECT(C2D_RESULT_THROTTLED, c2d_service_client_send(once, "dev", x, NULL));
    OK(c2d_hub_fault_refuse_sends(t.hub, C2D_SEND_REFUSAL_BUSY, 1, 0));
    EXPECT(C2D_RESULT_UNAVAILABLE, c2d_service_client_send(once, "dev", x, NULL));
    OK(c2d_hub_fault_refuse_sends(t.hub, C2D_SEND_REFUSAL_QUOTA, 1, 0));
    EXPECT(C2D_RESULT_QUOTA_EXCEEDED, c2d_service_client_send(once, "dev", x, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_hub_fault_refuse_sends(t.hub, C2D_SEND_REFUSAL_BUSY, 0, 0));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_hub_fault_refuse_sends(t.hub, 7, 1, 0));
    OK(c2d_service_client_send(once, "dev", x, NULL));
    OK(c2d_hub_fault_refuse_sends(t.hub, C2D_SEND_REFUSAL_BUSY, 2, 0));
    OK(c2d_service_client_send(service, "dev", x, NULL)); /* retried by the default policy */
    uint64_t refused = 0;
    OK(c2d_hub_refusals(t.hub, "fault", &refused));
    CHECK(refused == 5);
    OK(c2d_hub_fault_delay(t.hub, "dev", 10));
    OK(c2d_hub_fault_clear(t.hub));

    step("stall-store: a send its device completes is answered by the completion, not the disk");
    OK(c2d_hub_fault_stall_store(t.hub, 60000));
    struct completer completer = {device, "no disk needed"};
    pthread_t taker;
    CHECK(pthread_create(&taker, NULL, complete_until, &completer) == 0);
    long long begun = now_ms();
    c2d_message *quick = new_message("no disk needed", C2D_ACK_NONE);
    OK(c2d_service_client_send(service, "dev", quick, NULL));
    CHECK(now_ms() - begun < 60000);
    CHECK(pthread_join(taker, NULL) == 0);
    c2d_message_free(quick);
    OK(c2d_hub_fault_clear(t.hub));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_hub_fault_lose_acks(t.hub, "nobody", 1));
    c2d_message_free(x);
    c2d_service_client_free(once);
    c2d_service_client_free(service);
    OK(c2d_device_client_free(device));
    c2d_string_free(cs);
    test_hub_free(&t);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows even if the test hangs */
    static const struct {
        const char *name;
        c2d_transport transport;
    } transports[] = {
        {"mqtt", C2D_TRANSPORT_MQTT},
        {"mqtt-ws", C2D_TRANSPORT_MQTT_WS},
        {"amqp", C2D_TRANSPORT_AMQP},
        {"amqp-ws", C2D_TRANSPORT_AMQP_WS},
        {"https", C2D_TRANSPORT_HTTPS},
    };
    const char *only = getenv("C2D_TEST_TRANSPORT");
    if (!only) {
        hub_page();
        printf("ok hub page\n");
    }
    if (!only || strcmp(only, "fan-out") == 0) {
        fan_out();
        printf("ok fan-out\n");
        fan_out_paced();
        printf("ok fan-out paced\n");
    }
    if (!only || strcmp(only, "faults") == 0) {
        faults(C2D_TRANSPORT_MQTT);
        printf("ok faults mqtt\n");
        faults(C2D_TRANSPORT_AMQP);
        printf("ok faults amqp\n");
    }
    if (!only || strcmp(only, "proxy") == 0) {
        proxies();
        printf("ok proxies\n");
    }
    for (size_t i = 0; i < sizeof transports / sizeof transports[0]; i++) {
        if (only && strcmp(only, transports[i].name) != 0) continue;
        scenarios(transports[i].transport);
        printf("ok scenarios %s\n", transports[i].name);
        callbacks(transports[i].transport);
        printf("ok callbacks %s\n", transports[i].name);
        x509(transports[i].transport);
        printf("ok x509 %s\n", transports[i].name);
    }
    return 0;
}
