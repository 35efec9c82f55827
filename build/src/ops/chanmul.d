build/src/ops/chanmul.o: src/ops/chanmul.c src/ops/op.h src/core/rng.h
src/ops/op.h:
src/core/rng.h:
