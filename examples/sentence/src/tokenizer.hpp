// tokenizer.hpp: the SentencePiece-unigram tokenizer of the Universal Sentence Encoder
// lite, exactly as its reference runtime (npm @energetic-ai/embeddings 0.2.0, lib/
// tokenizer.ts) does it, so that the ids match for every input:
//  * the text is NFKC-normalised (ICU, as Node's String.prototype.normalize), every
//    U+0020 becomes U+2581 and one U+2581 is prepended (an empty text stays empty);
//  * pieces 6.. of vocab.json (the first six are reserved) are matched over code points;
//    where no piece starts at a position, the single code point there is an unknown
//    (id 0, score 0);
//  * Viterbi over end positions in order: for each end, the candidate pieces by start
//    position ascending; a candidate replaces the best when the best is still exactly 0
//    or its score (piece score + best at its start, in double; a null score is 0, as
//    JavaScript adds it) is >= the best (ties go to the later start); a piece listed twice in the vocabulary keeps its last score and id;
//  * the best path is read back from the end; consecutive unknowns merge into one id 0.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace sentence {

class Tokenizer {
 public:
  // vocab.json: an array of [piece, score] pairs. Throws etk::invalid_argument naming the
  // file when it cannot be read or is not such an array.
  static Tokenizer from_file(const std::string& vocab_json);

  std::vector<std::int32_t> encode(const std::string& utf8) const;
  // The pieces of ids joined (U+2581 kept); id 0 and the reserved ids give "".
  std::string decode(const std::vector<std::int32_t>& ids) const;
  std::size_t vocab_size() const { return text_.size(); }

 private:
  struct Piece {
    double score;
    std::int32_t id;
  };
  // The pieces as a trie over code points: node 0 is the root; edges_ maps
  // (node << 21 | code point) to the child node; piece_[node] is the piece ending there
  // (id -1: none). A walk from a position stops at the first code point no piece continues
  // with, so no substring is built or hashed.
  std::int32_t child(std::int32_t node, char32_t c) const;
  std::unordered_map<std::uint64_t, std::int32_t> edges_;
  std::vector<Piece> piece_{Piece{0.0, -1}};
  std::vector<std::string> text_;  // piece of each id (UTF-8; "" for the reserved ids)
};

// NFKC normal form of UTF-8 text (ICU). Invalid UTF-8 is rejected (etk::invalid_argument).
std::string nfkc(const std::string& utf8);

}  // namespace sentence
