build/src/ops/relu6.o: src/ops/relu6.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
