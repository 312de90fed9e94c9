/* main.c — TEMPORARY entry point until the formats branch lands its
 * dispatch table; only `lstm bench` is wired here. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "bench") == 0) return lstm_cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "usage: lstm bench ... (other commands arrive with the formats branch)\n");
    return 2;
}
