// reuters_arff.hpp: the Reuters-21578 articles of Weka's example ARFF files (Debian's
// `weka` package, usr/share/doc/weka/examples/ReutersCorn-{train,test}.arff, the ModApte
// split of 1,554 + 604 articles; ReutersGrain-* holds the same texts with other labels).
// Each @data row is a single-quoted string (escapes \n \t \' \\ \" and \r) and a class
// label; the text is read as Latin-1, converted to UTF-8 and whitespace-collapsed.
// scripts/lib/common.sh fetches the package into the cache (need data:reuters_arff).
#pragma once

#include <string>
#include <vector>

namespace examples {

// $ETK_REUTERS_ARFF_DIR, or the weka examples folder in the etk cache.
std::string reuters_arff_dir_from_env();
// The article texts of one ARFF file, in file order. Throws std::runtime_error naming the
// file and line on a row that is not a quoted string followed by a label.
std::vector<std::string> read_arff_texts(const std::string& path);
// split_sentences over ReutersCorn-train.arff then ReutersCorn-test.arff in `dir`.
std::vector<std::string> reuters_arff_sentences(const std::string& dir);

}  // namespace examples
