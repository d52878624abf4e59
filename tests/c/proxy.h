/* A real HTTP CONNECT proxy on 127.0.0.1 for the tests: it wants basic authentication as
 * user:secret, answers 407 otherwise, and counts the tunnels it opened. One thread accepts;
 * each tunnel has a thread that copies bytes both ways with poll(). */
#ifndef C2D_TEST_PROXY_H
#define C2D_TEST_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* base64("user:secret") */
#define TEST_PROXY_CREDENTIALS "Basic dXNlcjpzZWNyZXQ="

typedef struct test_proxy {
    int listener;
    uint16_t port;
    pthread_t acceptor;
    pthread_mutex_t lock;
    int tunnels;
    int refused;
} test_proxy;

typedef struct test_proxy_conn {
    test_proxy *proxy;
    int client;
} test_proxy_conn;

static inline int test_proxy_dial(const char *target) {
    char host[256];
    const char *colon = strrchr(target, ':');
    if (!colon || (size_t)(colon - target) >= sizeof host) return -1;
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) return -1;
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static inline void test_proxy_pump(int a, int b) {
    struct pollfd fds[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    char buf[16384];
    for (;;) {
        if (poll(fds, 2, -1) < 0) return;
        for (int i = 0; i < 2; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) return;
            for (ssize_t done = 0; done < n;) {
                ssize_t w = write(fds[1 - i].fd, buf + done, (size_t)(n - done));
                if (w <= 0) return;
                done += w;
            }
        }
    }
}

/* Whether the request head has `Proxy-Authorization: <TEST_PROXY_CREDENTIALS>` (the header's
 * name in any case, as HTTP allows). */
static inline bool test_proxy_authorized(const char *head) {
    static const char name[] = "proxy-authorization:";
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, sizeof name - 1) != 0) continue;
        const char *value = line + sizeof name - 1;
        while (*value == ' ') value++;
        size_t want = strlen(TEST_PROXY_CREDENTIALS);
        return strncmp(value, TEST_PROXY_CREDENTIALS, want) == 0 &&
               strncmp(value + want, "\r\n", 2) == 0;
    }
    return false;
}

static inline void *test_proxy_serve(void *arg) {
    test_proxy_conn *c = arg;
    char head[8192];
    size_t len = 0;
    while (len < sizeof head - 1) {
        ssize_t n = read(c->client, head + len, 1);
        if (n <= 0) break;
        len++;
        head[len] = '\0';
        if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0) break;
    }
    head[len] = '\0';
    char target[300] = "";
    if (sscanf(head, "CONNECT %299s HTTP/1.1", target) != 1 || !test_proxy_authorized(head)) {
        static const char no[] = "HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 "Content-Length: 0\r\n\r\n";
        pthread_mutex_lock(&c->proxy->lock);
        c->proxy->refused++;
        pthread_mutex_unlock(&c->proxy->lock);
        if (write(c->client, no, sizeof no - 1) < 0) { /* the client went away */ }
    } else {
        int upstream = test_proxy_dial(target);
        if (upstream >= 0) {
            static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
            pthread_mutex_lock(&c->proxy->lock);
            c->proxy->tunnels++;
            pthread_mutex_unlock(&c->proxy->lock);
            if (write(c->client, ok, sizeof ok - 1) == (ssize_t)(sizeof ok - 1))
                test_proxy_pump(c->client, upstream);
            close(upstream);
        }
    }
    close(c->client);
    free(c);
    return NULL;
}

static inline void *test_proxy_accept(void *arg) {
    test_proxy *p = arg;
    for (;;) {
        int client = accept(p->listener, NULL, NULL);
        if (client < 0) return NULL; /* closed by test_proxy_stop */
        test_proxy_conn *c = malloc(sizeof *c);
        if (!c) {
            close(client);
            continue;
        }
        c->proxy = p;
        c->client = client;
        pthread_t t;
        if (pthread_create(&t, NULL, test_proxy_serve, c) == 0) {
            pthread_detach(t);
        } else {
            close(client);
            free(c);
        }
    }
}

static inline void test_proxy_start(test_proxy *p) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    CHECK(p->listener >= 0);
    CHECK(bind(p->listener, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(p->listener, 16) == 0);
    CHECK(getsockname(p->listener, (struct sockaddr *)&addr, &addr_len) == 0);
    p->port = ntohs(addr.sin_port);
    CHECK(pthread_create(&p->acceptor, NULL, test_proxy_accept, p) == 0);
}

/* The proxy's URL with this password. */
static inline void test_proxy_url(const test_proxy *p, const char *password, char *out, size_t size) {
    snprintf(out, size, "http://user:%s@127.0.0.1:%u", password, (unsigned)p->port);
}

static inline int test_proxy_count(test_proxy *p, bool refused) {
    pthread_mutex_lock(&p->lock);
    int n = refused ? p->refused : p->tunnels;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Stops accepting. Tunnels still open end with their peers; they use the proxy's counters,
 * so a proxy must outlive them (the tests' are static, and their mutex is not destroyed). */
static inline void test_proxy_stop(test_proxy *p) {
    shutdown(p->listener, SHUT_RDWR);
    close(p->listener);
    pthread_join(p->acceptor, NULL);
}

#endif
