// Shared GoogleTest entry point: fixed seeds come from each test; this only
// makes sure a crashed child process never runs the parent's test body.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
