build/src/ops/concat.o: src/ops/concat.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
