#include <stdio.h>
int main(void) { puts("placeholder until the formats branch lands"); return 0; }
