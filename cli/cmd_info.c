/* cmd_info.c — lstm info: the cell and configuration inferred from a model file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char info_usage[] =
    "usage: lstm info --model M.safetensors [--prefix P] [--json]\n"
    "\n"
    "Prints the configuration inferred from the tensor names and shapes under\n"
    "prefix P (default ''): the cell (lstm or gru), input_size, hidden_size,\n"
    "num_layers, proj_size, bias, bidirectional, and the parameter count.\n"
    "--json prints one JSON object; a byte of --model or --prefix that is not\n"
    "UTF-8 is written as \\udcXX (Python's surrogateescape: os.fsencode gives\n"
    "the bytes back).\n";

int lstm_cmd_info(int argc, char **argv) {
    cli_args a = {argc, argv, 0, "info"};
    const char *model = NULL, *prefix = "";
    int json = 0, help = 0;
    for (a.i = 1; a.i < a.argc; a.i++) {
        if (cli_opt_str(&a, "--model", &model)) continue;
        if (cli_opt_str(&a, "--prefix", &prefix)) continue;
        if (cli_opt_flag(&a, "--json", &json)) continue;
        if (cli_opt_flag(&a, "--help", &help) || cli_opt_flag(&a, "-h", &help)) {
            fputs(info_usage, stdout);
            return 0;
        }
        cli_usage(&a, "unknown option '%s'", a.argv[a.i]);
    }
    if (!model) cli_usage(&a, "--model is required");
    lstm_net net;
    lstm_status s = lstm_net_load(&net, model, prefix);
    if (s != LSTM_OK) cli_fail_status(s);
    const lstm_config *c = &net.cfg;
    const char *cell = c->cell == LSTM_CELL_GRU ? "gru" : "lstm";
    if (json) {
        printf("{\"model\": ");
        cli_json_str(stdout, model);
        printf(", \"prefix\": ");
        cli_json_str(stdout, prefix);
        printf(", \"cell\": \"%s\"", cell);
        printf(", \"input_size\": %d, \"hidden_size\": %d, \"num_layers\": %d, \"proj_size\": %d, "
               "\"bias\": %s, \"bidirectional\": %s, \"parameters\": %zu}\n",
               c->input_size, c->hidden_size, c->num_layers, c->proj_size, c->bias ? "true" : "false",
               c->bidirectional ? "true" : "false", net.n_params);
    } else {
        printf("model          %s\n", model);
        printf("prefix         '%s'\n", prefix);
        printf("cell           %s\n", cell);
        printf("input_size     %d\n", c->input_size);
        printf("hidden_size    %d\n", c->hidden_size);
        printf("num_layers     %d\n", c->num_layers);
        printf("proj_size      %d\n", c->proj_size);
        printf("bias           %s\n", c->bias ? "true" : "false");
        printf("bidirectional  %s\n", c->bidirectional ? "true" : "false");
        printf("parameters     %zu\n", net.n_params);
    }
    lstm_net_free(&net);
    return 0; /* (main checks stdout: cli_finish_stdout) */
}
