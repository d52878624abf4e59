/* Misuse of the C API gets a clear result code and loses nothing: NULL arguments, values
 * that are not of their enum, double settle, settling what was not received, freeing a
 * client from inside its own callback, use after close, _free(NULL); a thread blocked in a
 * call is woken by closing the client from another thread, waits that time out take nothing,
 * and a connect to a hub that never answers ends with its timeout. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "test.h"

static void null_arguments(void) {
    c2d_message *m = NULL;
    c2d_device_options *dopts = NULL;
    c2d_device_client *device = NULL;
    c2d_service_client *service = NULL;
    c2d_retry_policy *retry = NULL;
    const char *text = NULL;
    const uint8_t *body = NULL;
    size_t len = 0;

    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_new((const uint8_t *)"x", 1, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_new(NULL, 3, &m));
    CHECK(m == NULL); /* out-parameters are written only on success */
    OK(c2d_message_new(NULL, 0, &m));
    OK(c2d_message_body(m, &body, &len));
    CHECK(len == 0);
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_body(NULL, &body, &len));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_body(m, NULL, &len));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_set_message_id(m, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_set_property(m, "a", NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_set_property(NULL, "a", "b"));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_set_message_id(m, "\xff\xfe"));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_set_ack(m, 42));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_message_id(m, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_property(m, NULL, &text));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_property_at(m, 0, &text, &text));
    /* a message that was not received cannot be settled */
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_complete(m));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_complete(NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_reject(NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_abandon(NULL));
    c2d_message_free(m);

    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_new(NULL));
    OK(c2d_device_options_new(&dopts));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_transport(dopts, 7));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_transport(NULL, C2D_TRANSPORT_AMQP));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_trusted_ca_pem(dopts, NULL, 10));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_trusted_ca_file(dopts, "/nonexistent/ca.pem"));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_retry(dopts, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_message_callback(dopts, NULL, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_options_set_port(dopts, 0));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_retry_policy_exponential_new(10, 5, 3, &retry));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_retry_policy_custom_new(NULL, NULL, &retry));
    CHECK(retry == NULL);

    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_client_connect(NULL, dopts, &device));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_client_connect("HostName=h;DeviceId=d;SharedAccessKey=a2V5", dopts, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_client_connect("not a connection string", dopts, &device));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_service_client_connect("HostName=h", NULL, &service));
    CHECK(device == NULL && service == NULL);
    c2d_device_options_free(dopts);

    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_client_receive(NULL, 0, &m));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_device_client_close(NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_service_client_send(NULL, "d", NULL, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_service_client_purge(NULL, "d", NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_sent_message_wait_outcome(NULL, 0, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_feedback_record_status(NULL, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_hub_start(NULL, NULL));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_hub_text(NULL, C2D_HUB_TEXT_CA_PEM, &text));
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_hub_advance_clock(NULL, 1));

    /* _free(NULL) does nothing */
    c2d_message_free(NULL);
    c2d_device_options_free(NULL);
    c2d_service_options_free(NULL);
    c2d_hub_options_free(NULL);
    c2d_retry_policy_free(NULL);
    c2d_sent_message_free(NULL);
    c2d_feedback_record_free(NULL);
    c2d_service_client_free(NULL);
    c2d_hub_free(NULL);
    c2d_string_free(NULL);
    OK(c2d_device_client_free(NULL));

    /* the last error says what was wrong, snprintf-style */
    EXPECT(C2D_RESULT_INVALID_ARGUMENT, c2d_message_new(NULL, 0, NULL));
    char small[8];
    size_t need = c2d_last_error_message(small, sizeof small);
    CHECK(need > sizeof small);
    CHECK(strlen(small) == sizeof small - 1);
    char *full = malloc(need + 1);
    CHECK(c2d_last_error_message(full, need + 1) == need);
    CHECK(strstr(full, "out_message is NULL") != NULL);
    free(full);
    CHECK(c2d_last_error_message(NULL, 0) == need);
    printf("ok null arguments\n");
}

/* Freeing a client from its own callback is an error (not a deadlock); closing it there is
 * fine, and it is then freed from the main thread. */
typedef struct state {
    pthread_mutex_t lock;
    c2d_device_client *device;
    c2d_result free_result, close_result, settle_again, receive_after_close;
    bool done;
} state;

static void on_message(void *user_data, c2d_message *message) {
    state *s = user_data;
    pthread_mutex_lock(&s->lock);
    c2d_device_client *device = s->device;
    pthread_mutex_unlock(&s->lock);
    OK(c2d_message_complete(message));
    c2d_result again = c2d_message_complete(message);
    c2d_message_free(message);
    c2d_result freed = c2d_device_client_free(device);
    c2d_result closed = c2d_device_client_close(device);
    c2d_message *m = NULL;
    c2d_result received = c2d_device_client_receive(device, 0, &m);
    pthread_mutex_lock(&s->lock);
    s->settle_again = again;
    s->free_result = freed;
    s->close_result = closed;
    s->receive_after_close = received;
    s->done = true;
    pthread_mutex_unlock(&s->lock);
}

static void free_from_callback(void) {
    test_hub t;
    test_hub_start(&t);
    char *cs = NULL;
    OK(c2d_hub_create_device(t.hub, "self", &cs));
    state s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_mutex_lock(&s.lock); /* the callback waits until s.device is set */
    c2d_device_options *opts = test_device_options(&t, C2D_TRANSPORT_AMQP);
    OK(c2d_device_options_set_message_callback(opts, on_message, &s));
    c2d_device_client *device = NULL;
    OK(c2d_device_client_connect(cs, opts, &device));
    c2d_device_options_free(opts);
    s.device = device;
    pthread_mutex_unlock(&s.lock);
    c2d_service_client *service = test_service(&t);
    c2d_message *m = NULL;
    OK(c2d_message_new((const uint8_t *)"x", 1, &m));
    OK(c2d_service_client_send(service, "self", m, NULL));
    c2d_message_free(m);
    bool done = false;
    for (int waited = 0; waited < 15000 && !done; waited += 10) {
        sleep_ms(10);
        pthread_mutex_lock(&s.lock);
        done = s.done;
        pthread_mutex_unlock(&s.lock);
    }
    CHECK(done);
    CHECK(s.settle_again == C2D_RESULT_ALREADY_SETTLED);
    CHECK(s.free_result == C2D_RESULT_INVALID_ARGUMENT);
    CHECK(s.close_result == C2D_RESULT_OK);
    CHECK(s.receive_after_close == C2D_RESULT_CLOSED);
    OK(c2d_device_client_free(device));
    c2d_service_client_free(service);
    c2d_string_free(cs);
    test_hub_free(&t);
    printf("ok free from callback\n");
}

/* A retry callback decides; c2d functions that wait refuse to run inside it. */
static int retries;
static bool decide(void *user_data, uint32_t retry, c2d_result error, uint32_t *out_delay_ms) {
    (void)user_data;
    (void)error;
    retries++;
    *out_delay_ms = 10;
    return retry < 3;
}

static void use_after_close(void) {
    test_hub t;
    test_hub_start(&t);
    char *cs = NULL;
    OK(c2d_hub_create_device(t.hub, "closed", &cs));
    c2d_device_client *device = NULL;
    OK(test_device(&t, cs, C2D_TRANSPORT_MQTT, &device));
    c2d_service_client *service = test_service(&t);
    OK(c2d_service_client_close(service));
    c2d_message *m = NULL;
    OK(c2d_message_new((const uint8_t *)"x", 1, &m));
    EXPECT(C2D_RESULT_CLOSED, c2d_service_client_send(service, "closed", m, NULL));
    uint64_t purged;
    EXPECT(C2D_RESULT_CLOSED, c2d_service_client_purge(service, "closed", &purged));
    c2d_feedback_record *r = NULL;
    EXPECT(C2D_RESULT_CLOSED, c2d_service_client_feedback_receive(service, 0, &r));
    c2d_service_client_free(service);
    OK(c2d_device_client_close(device));
    c2d_message *got = NULL;
    EXPECT(C2D_RESULT_CLOSED, c2d_device_client_receive(device, 1000, &got));
    OK(c2d_device_client_free(device));

    /* the hub is closed after stop; a device then finds nothing to connect to, and the custom
     * retry policy is asked for every retry */
    uint16_t mqtt = t.mqtt;
    OK(c2d_hub_stop(t.hub));
    char *more = NULL;
    EXPECT(C2D_RESULT_CLOSED, c2d_hub_create_device(t.hub, "late", &more));
    c2d_retry_policy *retry = NULL;
    OK(c2d_retry_policy_custom_new(decide, NULL, &retry));
    c2d_device_options *opts = test_device_options(&t, C2D_TRANSPORT_MQTT);
    OK(c2d_device_options_set_port(opts, mqtt));
    OK(c2d_device_options_set_retry(opts, retry));
    c2d_retry_policy_free(retry);
    EXPECT(C2D_RESULT_UNAVAILABLE, c2d_device_client_connect(cs, opts, &device));
    CHECK(retries == 3);
    c2d_device_options_free(opts);
    c2d_message_free(m);
    c2d_string_free(cs);
    test_hub_free(&t);
    printf("ok use after close\n");
}

/* A call blocked in another thread, waiting long, and what it returned. */
typedef struct blocked {
    c2d_device_client *device;
    c2d_service_client *service;
    c2d_sent_message *sent;
    c2d_result result;
} blocked;

static void *receive_blocked(void *arg) {
    blocked *b = arg;
    c2d_message *m = NULL;
    b->result = c2d_device_client_receive(b->device, C2D_TIMEOUT_INFINITE, &m);
    c2d_message_free(m);
    return NULL;
}

static void *outcome_blocked(void *arg) {
    blocked *b = arg;
    c2d_feedback_record *r = NULL;
    b->result = c2d_sent_message_wait_outcome(b->sent, C2D_TIMEOUT_INFINITE, &r);
    c2d_feedback_record_free(r);
    return NULL;
}

static void *feedback_blocked(void *arg) {
    blocked *b = arg;
    c2d_feedback_record *r = NULL;
    b->result = c2d_service_client_feedback_receive(b->service, C2D_TIMEOUT_INFINITE, &r);
    c2d_feedback_record_free(r);
    return NULL;
}

/* Closing a client from another thread wakes the calls blocked on it, waiting for ever,
 * with C2D_RESULT_CLOSED; the message that was not received stays queued at the hub. */
static void wake_blocked_calls(void) {
    test_hub t;
    test_hub_start(&t);
    char *cs = NULL;
    OK(c2d_hub_create_device(t.hub, "woken", &cs));
    for (int transport = C2D_TRANSPORT_MQTT; transport <= C2D_TRANSPORT_AMQP; transport++) {
        blocked b = {0};
        OK(test_device(&t, cs, (c2d_transport)transport, &b.device));
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, receive_blocked, &b) == 0);
        sleep_ms(200); /* the thread now waits in the receive */
        OK(c2d_device_client_close(b.device));
        CHECK(pthread_join(thread, NULL) == 0);
        EXPECT(C2D_RESULT_CLOSED, b.result);
        OK(c2d_device_client_free(b.device));
    }

    /* the service side: a message's outcome, and the feedback stream */
    blocked outcome = {0}, feedback = {0};
    outcome.service = feedback.service = test_service(&t);
    c2d_message *m = NULL;
    OK(c2d_message_new((const uint8_t *)"x", 1, &m));
    OK(c2d_message_set_ack(m, C2D_ACK_FULL));
    OK(c2d_service_client_send(outcome.service, "woken", m, &outcome.sent));
    c2d_message_free(m);
    pthread_t threads[2];
    CHECK(pthread_create(&threads[0], NULL, outcome_blocked, &outcome) == 0);
    CHECK(pthread_create(&threads[1], NULL, feedback_blocked, &feedback) == 0);
    sleep_ms(200);
    OK(c2d_service_client_close(outcome.service));
    CHECK(pthread_join(threads[0], NULL) == 0 && pthread_join(threads[1], NULL) == 0);
    EXPECT(C2D_RESULT_CLOSED, outcome.result);
    EXPECT(C2D_RESULT_CLOSED, feedback.result);
    c2d_sent_message_free(outcome.sent);
    c2d_service_client_free(outcome.service);
    size_t depth = 0;
    OK(c2d_hub_queue_depth(t.hub, "woken", &depth));
    CHECK(depth == 1); /* the message no receive took is still queued */
    c2d_string_free(cs);
    test_hub_free(&t);
    printf("ok wake blocked calls\n");
}

/* A connect to a hub that accepts TCP and never answers (the TLS handshake waits: the
 * kernel completes the connections into the listen backlog) ends with the client's operation
 * timeout, not later. */
static void connect_to_a_silent_hub(void) {
    int server = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(server >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    CHECK(bind(server, (struct sockaddr *)&address, size) == 0 && listen(server, 16) == 0);
    CHECK(getsockname(server, (struct sockaddr *)&address, &size) == 0);
    for (int transport = C2D_TRANSPORT_MQTT; transport <= C2D_TRANSPORT_AMQP; transport += 2) {
        c2d_device_options *opts = NULL;
        c2d_retry_policy *none = NULL;
        OK(c2d_device_options_new(&opts));
        OK(c2d_device_options_set_transport(opts, (c2d_transport)transport));
        OK(c2d_device_options_set_port(opts, ntohs(address.sin_port)));
        OK(c2d_device_options_set_timeout_ms(opts, 300));
        OK(c2d_retry_policy_none_new(&none));
        OK(c2d_device_options_set_retry(opts, none));
        c2d_retry_policy_free(none);
        c2d_device_client *device = NULL;
        EXPECT(C2D_RESULT_TIMEOUT,
               c2d_device_client_connect("HostName=localhost;DeviceId=d;SharedAccessKey=a2V5", opts, &device));
        CHECK(device == NULL);
        c2d_device_options_free(opts);
    }
    close(server);
    printf("ok connect to a silent hub\n");
}

/* Sends ROUNDS numbered messages, a millisecond or two apart. */
enum { ROUNDS = 100 };
typedef struct sender {
    c2d_service_client *service;
    volatile int done;
    pthread_mutex_t lock;
} sender;

static void *send_rounds(void *arg) {
    sender *s = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char body[16];
        int n = snprintf(body, sizeof body, "%d", i);
        c2d_message *m = NULL;
        OK(c2d_message_new((const uint8_t *)body, (size_t)n, &m));
        OK(c2d_service_client_send(s->service, "racing", m, NULL));
        c2d_message_free(m);
        sleep_ms(1 + i % 2);
    }
    pthread_mutex_lock(&s->lock);
    s->done = 1;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Waits that time out take nothing: receives with timeouts of 0 to 4 ms racing the arrival of
 * a hundred messages sent from another thread, then every message is received exactly once;
 * an outcome wait that times out leaves the record to the next one. */
static void timeouts_take_nothing(void) {
    test_hub t;
    test_hub_start_with_depth(&t, ROUNDS);
    char *cs = NULL;
    OK(c2d_hub_create_device(t.hub, "racing", &cs));
    c2d_service_client *service = test_service(&t);
    for (int transport = C2D_TRANSPORT_MQTT; transport <= C2D_TRANSPORT_AMQP; transport += 2) {
        c2d_device_client *device = NULL;
        OK(test_device(&t, cs, (c2d_transport)transport, &device));
        int seen[ROUNDS] = {0}, received = 0, timed_out = 0;
        sender s = {.service = service, .done = 0};
        pthread_mutex_init(&s.lock, NULL);
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, send_rounds, &s) == 0);
        for (int i = 0; received < ROUNDS; i++) {
            pthread_mutex_lock(&s.lock);
            int sending = !s.done;
            pthread_mutex_unlock(&s.lock);
            c2d_message *got = NULL;
            c2d_result r = c2d_device_client_receive(device, sending ? (uint32_t)(i % 5) : 15000, &got);
            if (r == C2D_RESULT_TIMEOUT) {
                CHECK(sending); /* once all are sent, every message must come */
                timed_out++;
                continue;
            }
            OK(r);
            const uint8_t *body = NULL;
            size_t len = 0;
            OK(c2d_message_body(got, &body, &len));
            char text[16] = {0};
            CHECK(len < sizeof text);
            memcpy(text, body, len);
            int n = atoi(text);
            CHECK(n >= 0 && n < ROUNDS);
            seen[n]++;
            received++;
            OK(c2d_message_complete(got));
            c2d_message_free(got);
        }
        CHECK(pthread_join(thread, NULL) == 0);
        pthread_mutex_destroy(&s.lock);
        CHECK(timed_out > 0);
        for (int i = 0; i < ROUNDS; i++) CHECK(seen[i] == 1); /* each exactly once */
        c2d_message *extra = NULL;
        EXPECT(C2D_RESULT_TIMEOUT, c2d_device_client_receive(device, 300, &extra));
        OK(c2d_device_client_free(device));
    }

    /* an outcome wait that times out leaves the record to the next wait */
    c2d_device_client *device = NULL;
    OK(test_device(&t, cs, C2D_TRANSPORT_AMQP, &device));
    c2d_message *m = NULL;
    OK(c2d_message_new((const uint8_t *)"x", 1, &m));
    OK(c2d_message_set_ack(m, C2D_ACK_FULL));
    c2d_sent_message *sent = NULL;
    OK(c2d_service_client_send(service, "racing", m, &sent));
    c2d_message_free(m);
    c2d_feedback_record *record = NULL;
    EXPECT(C2D_RESULT_TIMEOUT, c2d_sent_message_wait_outcome(sent, 50, &record));
    c2d_message *got = NULL;
    OK(c2d_device_client_receive(device, 15000, &got));
    OK(c2d_message_complete(got));
    c2d_message_free(got);
    OK(c2d_sent_message_wait_outcome(sent, 15000, &record));
    c2d_feedback_status status;
    OK(c2d_feedback_record_status(record, &status));
    CHECK(status == C2D_FEEDBACK_STATUS_SUCCESS);
    c2d_feedback_record_free(record);
    c2d_sent_message_free(sent);
    OK(c2d_device_client_free(device));
    c2d_service_client_free(service);
    c2d_string_free(cs);
    test_hub_free(&t);
    printf("ok timeouts take nothing\n");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows even if the test hangs */
    null_arguments();
    free_from_callback();
    use_after_close();
    wake_blocked_calls();
    timeouts_take_nothing();
    connect_to_a_silent_hub();
    return 0;
}
