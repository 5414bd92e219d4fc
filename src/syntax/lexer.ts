import { createToken, Lexer, type TokenType } from "chevrotain";
import { stageKeywords } from "../core/ir.js";

// Comments and whitespace are kept out of the parser: comments go to their own group so the formatter keeps them.
export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n\f\v\u00a0\ufeff]+/, group: Lexer.SKIPPED });
export const DocComment = createToken({ name: "DocComment", pattern: /\/\/\/[^\n\r]*/, group: "comments" });
export const LineComment = createToken({ name: "LineComment", pattern: /\/\/[^\n\r]*/, group: "comments" });

/**
 * Every token that can serve as a name: identifiers, and keywords outside the place where they start a
 * declaration (`model = teacher`, `field: output`). A category, so the parser matches it with one CONSUME.
 */
export const Name = createToken({ name: "Name", pattern: Lexer.NA, label: "a name" });
export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [Name], label: "a name" });
const keyword = (name: string, word: string, soft = false) =>
  createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `'${word}'`, ...(soft ? { categories: [Name] } : {}) });

export const Import = keyword("Import", "import", true);
export const As = keyword("As", "as", true);
export const Type = keyword("Type", "type", true);
export const Recipe = keyword("Recipe", "recipe", true);
export const Output = keyword("Output", "output", true);
export const Repeat = keyword("Repeat", "repeat", true);
export const From = keyword("From", "from", true);
export const True = keyword("True", "true");
export const False = keyword("False", "false");
export const Null = keyword("Null", "null");
export const StageKw = createToken({
  name: "StageKw",
  pattern: new RegExp(`(?:${stageKeywords.join("|")})(?![A-Za-z0-9_])`),
  categories: [Name],
  label: "a stage keyword (model, dataset, generate, filter, mix, train, eval, stage)",
});

export const RawString = createToken({ name: "RawString", pattern: /"""[\s\S]*?"""/, line_breaks: true, label: "a raw string" });
export const StringLit = createToken({ name: "StringLit", pattern: /"(?:[^"\\\n\r]|\\(?:["\\/bfnrt]|u\{[0-9A-Fa-f]{1,6}\}|u[0-9A-Fa-f]{4}))*"/, label: "a string" });
/**
 * Malformed strings are tokens of their own, kept out of the parser (group "invalid"), so one mistake is one
 * diagnostic: a raw string never closed runs to the end of the file, a string never closed to the end of its line.
 */
export const UnterminatedRawString = createToken({ name: "UnterminatedRawString", pattern: /"""[\s\S]*/, line_breaks: true, group: "invalid" });
export const BadString = createToken({ name: "BadString", pattern: /"(?:[^"\\\n\r]|\\[^\n\r])*"?/, group: "invalid" });
export const Duration = createToken({ name: "Duration", pattern: /-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:ms|s|m|h|d)(?![A-Za-z0-9_])/, label: "a duration" });
export const NumberLit = createToken({ name: "NumberLit", pattern: /-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9][0-9_]*)?(?![A-Za-z_])/, label: "a number" });

export const Pipe = createToken({ name: "Pipe", pattern: /\|>/, label: "'|>'" });
export const Arrow = createToken({ name: "Arrow", pattern: /->/, label: "'->'" });
export const LBrace = createToken({ name: "LBrace", pattern: /\{/, label: "'{'" });
export const RBrace = createToken({ name: "RBrace", pattern: /\}/, label: "'}'" });
export const LParen = createToken({ name: "LParen", pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: "RParen", pattern: /\)/, label: "')'" });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/, label: "'['" });
export const RBracket = createToken({ name: "RBracket", pattern: /\]/, label: "']'" });
export const LAngle = createToken({ name: "LAngle", pattern: /</, label: "'<'" });
export const RAngle = createToken({ name: "RAngle", pattern: />/, label: "'>'" });
export const Comma = createToken({ name: "Comma", pattern: /,/, label: "','" });
export const Colon = createToken({ name: "Colon", pattern: /:/, label: "':'" });
export const Equals = createToken({ name: "Equals", pattern: /=/, label: "'='" });
export const Dot = createToken({ name: "Dot", pattern: /\./, label: "'.'" });
export const Slash = createToken({ name: "Slash", pattern: /\//, label: "'/'" });
export const Question = createToken({ name: "Question", pattern: /\?/, label: "'?'" });

export const allTokens: TokenType[] = [
  WhiteSpace,
  DocComment,
  LineComment,
  RawString,
  UnterminatedRawString,
  StringLit,
  BadString,
  Duration,
  NumberLit,
  Import,
  As,
  Type,
  Recipe,
  Output,
  Repeat,
  From,
  True,
  False,
  Null,
  StageKw,
  Identifier,
  Pipe,
  Arrow,
  LBrace,
  RBrace,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LAngle,
  RAngle,
  Comma,
  Colon,
  Equals,
  Dot,
  Slash,
  Question,
  Name,
];

export const itpLexer = new Lexer(allTokens, {
  positionTracking: "onlyOffset",
  ensureOptimizations: false,
  // Validated by a test (test/parser.test.ts) rather than at every start-up.
  skipValidations: true,
  // The default message reprints the rest of the input; ours names the character.
  errorMessageProvider: {
    buildUnexpectedCharactersMessage: (text, offset, length) => {
      const ch = String.fromCodePoint(text.codePointAt(offset) ?? 0xfffd);
      return `unexpected character ${JSON.stringify(ch)}`;
    },
    buildUnableToPopLexerModeMessage: () => "internal lexer mode error",
  },
});
