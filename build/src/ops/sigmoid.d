build/src/ops/sigmoid.o: src/ops/sigmoid.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
