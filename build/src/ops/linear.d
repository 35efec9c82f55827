build/src/ops/linear.o: src/ops/linear.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
