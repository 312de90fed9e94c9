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

/* spec: comma-separated files and directories (see corpus.c): the files it
 * stands for, in order (*n of them, at least one); exits on error. */
char **cli_corpus_list(const char *spec, int *n);
/* Maps the files of cli_corpus_list (and frees the list); exits on error. */
void cli_corpus_open(cli_corpus *c, char **files, int n);
void cli_corpus_close(cli_corpus *c);
/* Exits with "WHAT: byte 0x.. at offset N is not in the model's vocabulary". */
void cli_corpus_check_vocab(const lstm_charlm *m, const unsigned char *p, size_t n, const char *what,
                            const unsigned char *seen);

#endif
