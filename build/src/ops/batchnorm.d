build/src/ops/batchnorm.o: src/ops/batchnorm.c src/ops/op.h \
 src/core/rng.h
src/ops/op.h:
src/core/rng.h:
