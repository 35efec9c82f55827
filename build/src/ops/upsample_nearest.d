build/src/ops/upsample_nearest.o: src/ops/upsample_nearest.c src/ops/op.h \
 src/core/rng.h
src/ops/op.h:
src/core/rng.h:
