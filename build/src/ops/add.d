build/src/ops/add.o: src/ops/add.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
