/* Every result code has its own name, unknown codes are named as such, and the header's
 * version macros are the library's and the crate's version. */
#define _POSIX_C_SOURCE 200809L
#include "test.h"

#ifndef C2D_CRATE_VERSION
#error "build with -DC2D_CRATE_VERSION=\"x.y.z\" (the workspace version, see tests/c/run.sh)"
#endif

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows even if the test hangs */
    static const c2d_result codes[] = {
        C2D_RESULT_OK, C2D_RESULT_INVALID_ARGUMENT, C2D_RESULT_UNAUTHORIZED,
        C2D_RESULT_DEVICE_NOT_FOUND, C2D_RESULT_QUEUE_FULL, C2D_RESULT_MESSAGE_TOO_LARGE,
        C2D_RESULT_THROTTLED, C2D_RESULT_UNAVAILABLE, C2D_RESULT_TIMEOUT,
        C2D_RESULT_MESSAGE_LOCK_LOST, C2D_RESULT_ALREADY_SETTLED, C2D_RESULT_UNSUPPORTED,
        C2D_RESULT_CLOSED, C2D_RESULT_PROTOCOL, C2D_RESULT_INTERNAL, C2D_RESULT_PANIC,
        C2D_RESULT_QUOTA_EXCEEDED,
    };
    const size_t n = sizeof codes / sizeof codes[0];
    CHECK(n == 17); /* 15 error kinds, OK and PANIC */
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i] == i);
        const char *name = c2d_result_str(codes[i]);
        CHECK(name != NULL && *name != '\0' && strcmp(name, "unknown result") != 0);
        for (size_t j = 0; j < i; j++) CHECK(strcmp(name, c2d_result_str(codes[j])) != 0);
    }
    CHECK_STR(c2d_result_str(C2D_RESULT_DEVICE_NOT_FOUND), "device not found");
    CHECK_STR(c2d_result_str(17), "unknown result");
    CHECK_STR(c2d_feedback_status_str(C2D_FEEDBACK_STATUS_DELIVERY_COUNT_EXCEEDED),
              "DeliveryCountExceeded");
    CHECK_STR(c2d_feedback_status_str(99), "Unknown");

    char header[32];
    snprintf(header, sizeof header, "%d.%d.%d", C2D_VERSION_MAJOR, C2D_VERSION_MINOR,
             C2D_VERSION_PATCH);
    CHECK_STR(header, c2d_version());
    CHECK_STR(header, C2D_CRATE_VERSION);
    printf("ok %zu result codes, version %s\n", n, c2d_version());
    return 0;
}
