#include <stdio.h>
int main(void) { puts("fbnet"); return 0; }
