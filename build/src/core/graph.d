build/src/core/graph.o: src/core/graph.c src/core/graph.h \
 src/core/params.h src/ops/op.h src/core/rng.h include/fbnet.h \
 src/core/status.h
src/core/graph.h:
src/core/params.h:
src/ops/op.h:
src/core/rng.h:
include/fbnet.h:
src/core/status.h:
