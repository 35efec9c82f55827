build/src/core/params.o: src/core/params.c src/core/params.h src/ops/op.h \
 src/core/rng.h src/core/status.h include/fbnet.h
src/core/params.h:
src/ops/op.h:
src/core/rng.h:
src/core/status.h:
include/fbnet.h:
