/*
 * chat_template.h - turn a conversation into the prompt text a chat model
 * was trained on.
 *
 * GGUF files carry the template as a Jinja program (tokenizer.chat_template).
 * numatp does not run Jinja: like llama.cpp's llm_chat_detect_template it
 * recognizes the common template families by marker substrings and formats
 * them with hand-written C, producing byte for byte what llama.cpp's
 * llm_chat_apply_template produces. The text never contains the BOS token:
 * the tokenizer adds it.
 */
#ifndef NTP_CHAT_TEMPLATE_H
#define NTP_CHAT_TEMPLATE_H

#include "ntp.h"

#include <stdbool.h>
#include <stddef.h>

/* Template families; the names in comments are the ones --chat-template takes. */
enum ntp_chat_style {
    NTP_CHAT_UNKNOWN = 0,
    NTP_CHAT_CHATML,            /* "chatml": <|im_start|>role\n...<|im_end|>\n (Qwen, Hermes) */
    NTP_CHAT_LLAMA2,            /* "llama2" (alias "mistral"): [INST] without <<SYS>> */
    NTP_CHAT_LLAMA2_SYS,        /* "llama2-sys": system prompt in <<SYS>> */
    NTP_CHAT_LLAMA2_SYS_BOS,    /* "llama2-sys-bos": also <s> before every later [INST] */
    NTP_CHAT_LLAMA2_SYS_STRIP,  /* "llama2-sys-strip": also trims every message */
    NTP_CHAT_MISTRAL_V1,        /* "mistral-v1": " [INST] ... [/INST]" */
    NTP_CHAT_MISTRAL_V3,        /* "mistral-v3": "[INST] ...[/INST]", trimmed replies */
    NTP_CHAT_MISTRAL_V3_TEKKEN, /* "mistral-v3-tekken": no spaces around [INST] */
    NTP_CHAT_MISTRAL_V7,        /* "mistral-v7": [SYSTEM_PROMPT] ... */
    NTP_CHAT_MISTRAL_V7_TEKKEN, /* "mistral-v7-tekken" */
    NTP_CHAT_LLAMA3,            /* "llama3": <|start_header_id|>role<|end_header_id|> */
    NTP_CHAT_GEMMA,             /* "gemma": <start_of_turn>user|model */
    NTP_CHAT_ZEPHYR,            /* "zephyr": <|role|>\n...<|endoftext|>\n */
    NTP_CHAT_PHI3,              /* "phi3": <|role|>\n...<|end|>\n */
    NTP_CHAT_PHI4,              /* "phi4": <|im_start|>role<|im_sep|>...<|im_end|> */
    NTP_CHAT_FALCON3,           /* "falcon3": <|role|>\n...\n */
    NTP_CHAT_GLMEDGE,           /* "glmedge": <|role|>\n... */
    NTP_CHAT_DEEPSEEK2,         /* "deepseek2": User: ...\n\nAssistant: ... (DeepSeek-V2) */
    NTP_CHAT_DEEPSEEK3,         /* "deepseek3": <｜User｜>...<｜Assistant｜>... (V3, R1) */
    NTP_CHAT_STYLE_COUNT,
};

/* One message. role is "system", "user" or "assistant" (others pass through where a template names
 * roles). */
struct ntp_chat_msg {
    const char *role;    /* NUL-terminated, borrowed */
    const char *content; /* NUL-terminated, borrowed */
};

/*
 * Recognize the family of a Jinja chat template (or of a style name, as
 * llama.cpp also accepts). NTP_E_UNSUPPORTED, with a message suggesting
 * --chat-template, when no family matches.
 */
ntp_status ntp__chat_detect(const char *tmpl, enum ntp_chat_style *out);

/* Style by its name ("chatml", "llama3", "mistral", ...); NTP_E_NOT_FOUND listing the names. */
ntp_status ntp__chat_style_from_name(const char *name, enum ntp_chat_style *out);

/*
 * The style a command uses: the one named name (--chat-template) when name is
 * not NULL, else the family of the tokenizer.chat_template of the GGUF file
 * at path. A file without one gives fallback (*fell_back, when not NULL, says
 * so), or when fallback is NTP_CHAT_UNKNOWN, NTP_E_NOT_FOUND naming the file
 * and asking for --chat-template. Errors of the name, the file or detection
 * otherwise.
 */
ntp_status ntp__chat_choose(const char *path, const char *name, enum ntp_chat_style fallback,
                            enum ntp_chat_style *out, bool *fell_back);

/* The name of a style ("chatml"), or "unknown". */
const char *ntp__chat_style_name(enum ntp_chat_style style);

/*
 * The text that closes a reply in this style ("<|im_end|>", "<|eot_id|>", ...),
 * for a caller that stops generation on it; NULL when the style has none of
 * its own and relies on the end-of-sequence token.
 */
const char *ntp__chat_turn_end(enum ntp_chat_style style);

/*
 * Format msgs[0, n) and, when add_assistant_prompt is true and the style has
 * one, the header that opens the assistant's reply. Writes the text and a NUL
 * to out[0, cap) and its length (without the NUL) to *len. out == NULL with
 * cap == 0 only measures. NTP_E_OVERFLOW when the text does not fit (*len
 * still gives the size needed); NTP_E_INVALID_ARG for an unknown style or a
 * message with a NULL role or content.
 */
ntp_status ntp__chat_format(enum ntp_chat_style style, const struct ntp_chat_msg *msgs, size_t n,
                            bool add_assistant_prompt, char *out, size_t cap, size_t *len);

#endif /* NTP_CHAT_TEMPLATE_H */
