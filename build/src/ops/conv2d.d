build/src/ops/conv2d.o: src/ops/conv2d.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
