build/src/ops/relu.o: src/ops/relu.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
