build/src/ops/softmax_ce.o: src/ops/softmax_ce.c src/ops/op.h \
 src/core/rng.h
src/ops/op.h:
src/core/rng.h:
