/* corpus.h — lstm train's data, memory-mapped (cli/corpus.c). */
#ifndef LSTM_CLI_CORPUS_H
#define LSTM_CLI_CORPUS_H
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

typedef struct {
    const unsigned char *p; /* n bytes (NULL when n is 0) */
    size_t n;
    void *map;
    int nfiles;
    uint64_t hash;          /* FNV-1a of the bytes */
    unsigned char seen[256]; /* seen[b]: byte b occurs */
} cli_corpus;

/* spec: comma-separated files and directories (see corpus.c); exits on error. */
void cli_corpus_open(cli_corpus *c, const char *spec);
void cli_corpus_close(cli_corpus *c);
/* Exits with "WHAT: byte 0x.. at offset N is not in the model's vocabulary". */
void cli_corpus_check_vocab(const lstm_charlm *m, const unsigned char *p, size_t n, const char *what,
                            const unsigned char *seen);

#endif
