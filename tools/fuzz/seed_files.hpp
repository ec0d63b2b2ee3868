// tools/fuzz/seed_files.hpp: the file chores of a harness's seed generator (the main
// built with -DETK_FUZZ_SEED_MAIN, see tools/fuzz/run): its one argument, the corpus
// directory; whole files read and written as bytes.
#pragma once

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace fuzz_seeds {

// argv[1], or a usage message and exit(2).
inline std::string corpus_dir(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " DIR\n";
    std::exit(2);
  }
  return argv[1];
}

inline std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

}  // namespace fuzz_seeds
