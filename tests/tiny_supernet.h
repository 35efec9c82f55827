/* A two-path supernet with 7 bits (stem.1, s0.p0.0, s0.p0.1, s1.p0.0,
 * s1.p1.0, s1.f1to0, s1.f0to1) for tests: small enough for exhaustive and
 * many-step checks at 32 px. */
#ifndef FB_TESTS_TINY_SUPERNET_H
#define FB_TESTS_TINY_SUPERNET_H

static const char *TINY =
    "{\"name\": \"tiny\", \"search\": true, \"input_size\": 32,"
    " \"stem\": [[\"conv_k3_hs\", 8, 2, 1], [\"ir_k3_hs\", 8, 1, 1, {\"e\": 1}]],"
    " \"stages\": ["
    "  {\"open\": [\"ir_k3_hs\", 8, 2, 1, {\"e\": 2}], \"paths\": [[[\"ir_k3_hs\", 8, 1, 2, {\"e\": 2}]]]},"
    "  {\"open\": [\"ir_k3_sehsig_hs\", 16, 2, 1, {\"e\": 2}],"
    "   \"paths\": [[[\"ir_k3_hs\", 8, 1, 1, {\"e\": 2}]], [[\"ir_k3_sehsig_hs\", 16, 1, 1, {\"e\": 2}]]],"
    "   \"fusion\": \"all\"}],"
    " \"head\": [\"ir_pool_hs\", 32, 1, 1, {\"e\": 2}],"
    " \"heads\": {\"cls\": 1, \"det\": [0, 1], \"seg\": [0, 1]}}";

#endif
