build/src/core/status.o: src/core/status.c src/core/status.h \
 include/fbnet.h
src/core/status.h:
include/fbnet.h:
