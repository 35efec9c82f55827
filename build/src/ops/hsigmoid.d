build/src/ops/hsigmoid.o: src/ops/hsigmoid.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
