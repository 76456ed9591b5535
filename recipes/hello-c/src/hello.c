/* hello-c: a tiny program whose self-test proves it runs where no libc exists. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const loaders_and_libcs[] = {
    "/lib/ld-musl-x86_64.so.1",
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/libc.so",
};

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--selftest") == 0) {
        for (size_t i = 0; i < sizeof loaders_and_libcs / sizeof *loaders_and_libcs; i++) {
            if (access(loaders_and_libcs[i], F_OK) == 0) {
                printf("found %s: this root is not empty\n", loaders_and_libcs[i]);
                return 1;
            }
        }
        puts("ok: no libc in this root");
        return 0;
    }
    puts("hello from a static binary");
    return 0;
}
