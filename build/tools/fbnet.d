build/tools/fbnet.o: tools/fbnet.c
