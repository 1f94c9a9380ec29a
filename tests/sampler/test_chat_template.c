/*
 * test_chat_template.c - detection and formatting of chat templates.
 *
 * The expected texts are llama.cpp's (tests/test-chat-template.cpp, the
 * outputs of llm_chat_apply_template for its six-message conversation);
 * where llama.cpp tests no model of a style, the text follows its formatter.
 */
#include "core/core.h"
#include "model/chat_template.h"
#include "test.h"

#include <string.h>

static const struct ntp_chat_msg conv[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},
    {"user", "Another question"},
};
#define N_CONV (sizeof conv / sizeof conv[0])

struct format_case {
    enum ntp_chat_style style;
    const char *want;
};

static const struct format_case format_cases[] = {
    {NTP_CHAT_CHATML,
     "<|im_start|>system\nYou are a helpful "
     "assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
     "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
     "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother "
     "question<|im_end|>\n<|im_start|>assistant\n"},
    {NTP_CHAT_LLAMA2, "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are "
                      "you [/INST]   I am an assistant   </s>[INST] Another question [/INST]"},
    {NTP_CHAT_LLAMA2_SYS,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who "
     "are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]"},
    {NTP_CHAT_LLAMA2_SYS_BOS,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] "
     "Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]"},
    {NTP_CHAT_LLAMA2_SYS_STRIP,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who "
     "are you [/INST]I am an assistant</s>[INST] Another question [/INST]"},
    {NTP_CHAT_MISTRAL_V1,
     " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] "
     "Who are you [/INST]    I am an assistant   </s> [INST] Another question "
     "[/INST]"},
    {NTP_CHAT_MISTRAL_V3,
     "[INST] You are a helpful assistant\n\nHello[/INST] Hi there</s>[INST] Who "
     "are you[/INST] I am an assistant</s>[INST] Another question[/INST]"},
    {NTP_CHAT_MISTRAL_V3_TEKKEN,
     "[INST]You are a helpful assistant\n\nHello[/INST]Hi there</s>[INST]Who are you[/INST]   I am "
     "an assistant   </s>[INST]Another question[/INST]"},
    {NTP_CHAT_MISTRAL_V7,
     "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi "
     "there</s>[INST] Who are you[/INST]    I am an assistant   </s>[INST] Another "
     "question[/INST]"},
    {NTP_CHAT_MISTRAL_V7_TEKKEN,
     "[SYSTEM_PROMPT]You are a helpful assistant[/SYSTEM_PROMPT][INST]Hello[/INST]Hi "
     "there</s>[INST]Who are you[/INST]   I am an assistant   </s>[INST]Another question[/INST]"},
    {NTP_CHAT_LLAMA3,
     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
     "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>"
     "\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an "
     "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother "
     "question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {NTP_CHAT_GEMMA, "<start_of_turn>user\nYou are a helpful "
                     "assistant\n\nHello<end_of_turn>\n<start_of_turn>model\n"
                     "Hi there<end_of_turn>\n<start_of_turn>user\nWho are "
                     "you<end_of_turn>\n<start_of_turn>model\nI "
                     "am an assistant<end_of_turn>\n<start_of_turn>user\nAnother "
                     "question<end_of_turn>\n<start_of_turn>model\n"},
    {NTP_CHAT_ZEPHYR,
     "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|"
     "assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n<|assistant|>\n   I "
     "am an assistant   <|endoftext|>\n<|user|>\nAnother question<|endoftext|>\n<|assistant|>\n"},
    {NTP_CHAT_PHI3, "<|system|>\nYou are a helpful "
                    "assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi "
                    "there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an "
                    "assistant   <|end|>\n<|user|>\nAnother question<|end|>\n<|assistant|>\n"},
    {NTP_CHAT_PHI4, "<|im_start|>system<|im_sep|>You are a helpful "
                    "assistant<|im_end|><|im_start|>user<|im_sep|>Hello<|im_end|><|im_start|>"
                    "assistant<|im_sep|>Hi "
                    "there<|im_end|><|im_start|>user<|im_sep|>Who are "
                    "you<|im_end|><|im_start|>assistant<|im_sep|>   I am an assistant   "
                    "<|im_end|><|im_start|>user<|im_sep|>Another "
                    "question<|im_end|><|im_start|>assistant<|im_sep|>"},
    {NTP_CHAT_FALCON3,
     "<|system|>\nYou are a helpful assistant\n<|user|>\nHello\n<|assistant|>\nHi "
     "there\n<|user|>\nWho are you\n<|assistant|>\n   I am an assistant   "
     "\n<|user|>\nAnother question\n<|assistant|>\n"},
    {NTP_CHAT_GLMEDGE, "<|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi "
                       "there<|user|>\nWho are you<|assistant|>\n   I am an assistant   "
                       "<|user|>\nAnother question<|assistant|>"},
    /* llama.cpp's tests/test-chat-template.cpp expectations for DeepSeek-V2 and V3 */
    {NTP_CHAT_DEEPSEEK2, "You are a helpful assistant\n\nUser: Hello\n\nAssistant: Hi "
                         "there<｜end▁of▁sentence｜>User: Who are you\n\nAssistant:    I am an "
                         "assistant   <｜end▁of▁sentence｜>User: Another question\n\nAssistant:"},
    {NTP_CHAT_DEEPSEEK3,
     "You are a helpful assistant\n\n<｜User｜>Hello<｜Assistant｜>Hi "
     "there<｜end▁of▁sentence｜><｜User｜>Who are you<｜Assistant｜>   I am an assistant   "
     "<｜end▁of▁sentence｜><｜User｜>Another question<｜Assistant｜>"},
};

static void test_format(void)
{
    static char buf[4096];
    for (size_t i = 0; i < sizeof format_cases / sizeof format_cases[0]; i++) {
        const struct format_case *c = &format_cases[i];
        size_t len = 0, need = 0;
        CHECK_OK(ntp__chat_format(c->style, conv, N_CONV, true, NULL, 0, &need));
        CHECK_OK(ntp__chat_format(c->style, conv, N_CONV, true, buf, sizeof buf, &len));
        if (strcmp(buf, c->want) != 0 || len != strlen(c->want) || need != len) {
            fprintf(stderr, "%s:\n got: \"%s\"\nwant: \"%s\"\n", ntp__chat_style_name(c->style),
                    buf, c->want);
            ntp_test_failures++;
        }
        /* One byte short of the NUL: overflow, and the size needed is still reported. */
        CHECK_STATUS(ntp__chat_format(c->style, conv, N_CONV, true, buf, len, &need),
                     NTP_E_OVERFLOW);
        CHECK(need == len);
    }
}

static void test_format_edges(void)
{
    char buf[256];
    size_t len;
    /* Without the generation prompt, chatml ends after the last message. */
    CHECK_OK(ntp__chat_format(NTP_CHAT_CHATML, conv + 1, 1, false, buf, sizeof buf, &len));
    CHECK(strcmp(buf, "<|im_start|>user\nHello<|im_end|>\n") == 0);
    /* An empty conversation is just the generation prompt. */
    CHECK_OK(ntp__chat_format(NTP_CHAT_LLAMA3, NULL, 0, true, buf, sizeof buf, &len));
    CHECK(strcmp(buf, "<|start_header_id|>assistant<|end_header_id|>\n\n") == 0);
    /* Gemma: a system prompt waits past a model turn for the next user turn. */
    const struct ntp_chat_msg g[] = {
        {"user", "a"}, {"system", " s1 "}, {"assistant", "b"}, {"system", "s2"}, {"user", "c"}};
    CHECK_OK(ntp__chat_format(NTP_CHAT_GEMMA, g, 5, false, buf, sizeof buf, &len));
    CHECK(strcmp(buf, "<start_of_turn>user\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n"
                      "<start_of_turn>user\ns1s2\n\nc<end_of_turn>\n") == 0);
    /* The prefix property that chat relies on: adding a turn only appends text. */
    size_t l5, l6;
    char longer[1024];
    CHECK_OK(ntp__chat_format(NTP_CHAT_CHATML, conv, 5, false, buf, sizeof buf, &l5));
    CHECK_OK(ntp__chat_format(NTP_CHAT_CHATML, conv, 6, true, longer, sizeof longer, &l6));
    CHECK(l6 > l5 && memcmp(buf, longer, l5) == 0);
    const struct ntp_chat_msg bad[] = {{"user", NULL}};
    CHECK_STATUS(ntp__chat_format(NTP_CHAT_CHATML, bad, 1, true, buf, sizeof buf, &len),
                 NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp__chat_format(NTP_CHAT_UNKNOWN, conv, 1, true, buf, sizeof buf, &len),
                 NTP_E_INVALID_ARG);
}

struct detect_case {
    const char *tmpl; /* the marker-bearing part of a real template, or a whole one */
    enum ntp_chat_style want;
};

static const struct detect_case detect_cases[] = {
    {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
     "+ '<|im_end|>' + '\\n'}}{% endfor %}",
     NTP_CHAT_CHATML},
    {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
     "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
     "message['content'] + eos_token}}{% endif %}{% endfor %}",
     NTP_CHAT_LLAMA2},
    {"{{ '[INST] <<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' }}", NTP_CHAT_LLAMA2_SYS},
    {"{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}<<SYS>>",
     NTP_CHAT_LLAMA2_SYS_BOS},
    {"{{ '[INST] ' + content.strip() + ' [/INST]' }}<<SYS>>", NTP_CHAT_LLAMA2_SYS_STRIP},
    {"{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}",
     NTP_CHAT_MISTRAL_V1},
    {"{{- \"[AVAILABLE_TOOLS] [\" }}{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}",
     NTP_CHAT_MISTRAL_V3},
    {"{{- \"[AVAILABLE_TOOLS][\" }}{{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}",
     NTP_CHAT_MISTRAL_V3_TEKKEN},
    {"{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{{ '[INST] ' }}",
     NTP_CHAT_MISTRAL_V7},
    {"{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
     "message['content'] | trim + '<|eot_id|>' %}",
     NTP_CHAT_LLAMA3},
    {"{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}",
     NTP_CHAT_GEMMA},
    {"{{ '<|user|>\\n' + message['content'] + '<|endoftext|>' }}", NTP_CHAT_ZEPHYR},
    {"{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}",
     NTP_CHAT_PHI3},
    {"{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}", NTP_CHAT_PHI4},
    {"<|user|>\\n{{ item['content'] }}<|assistant|>\\n</s>", NTP_CHAT_FALCON3},
    {"<|user|>\\n{{ item['content'] }}<|assistant|>", NTP_CHAT_GLMEDGE},
    {"{{ 'Assistant: ' + message['content'] + eos_token }}", NTP_CHAT_DEEPSEEK2},
    {"{{'<｜User｜>' + message['content']}}{{'<｜Assistant｜>' + content + "
     "'<｜end▁of▁sentence｜>'}}",
     NTP_CHAT_DEEPSEEK3},
    {"chatml", NTP_CHAT_CHATML},
    {"mistral", NTP_CHAT_LLAMA2},
    {"llama2-sys-bos", NTP_CHAT_LLAMA2_SYS_BOS},
};

static void test_detect(void)
{
    for (size_t i = 0; i < sizeof detect_cases / sizeof detect_cases[0]; i++) {
        enum ntp_chat_style got = NTP_CHAT_UNKNOWN;
        CHECK_OK(ntp__chat_detect(detect_cases[i].tmpl, &got));
        if (got != detect_cases[i].want) {
            fprintf(stderr, "detect case %zu: got %s, want %s\n", i, ntp__chat_style_name(got),
                    ntp__chat_style_name(detect_cases[i].want));
            ntp_test_failures++;
        }
    }
    enum ntp_chat_style s;
    CHECK_STATUS(ntp__chat_detect("{{ messages }}", &s), NTP_E_UNSUPPORTED);
    CHECK(s == NTP_CHAT_UNKNOWN);
    CHECK(strstr(ntp_last_error(), "--chat-template") != NULL);
    /* A Vicuna template is unsupported, not mistaken for anything else. */
    CHECK_STATUS(ntp__chat_detect("{{'USER: ' + m}}{{'ASSISTANT: ' + m}}<|start_header_id|>"
                                  "<|end_header_id|>",
                                  &s),
                 NTP_E_UNSUPPORTED);
    CHECK(strstr(ntp_last_error(), "vicuna") != NULL);
    CHECK_STATUS(ntp__chat_detect("<|im_start|>User:<end_of_utterance>", &s), NTP_E_UNSUPPORTED);
}

static void test_names(void)
{
    for (int st = 1; st < NTP_CHAT_STYLE_COUNT; st++) {
        enum ntp_chat_style back = NTP_CHAT_UNKNOWN;
        const char *name = ntp__chat_style_name((enum ntp_chat_style)st);
        CHECK(strcmp(name, "unknown") != 0);
        CHECK_OK(ntp__chat_style_from_name(name, &back));
        CHECK(back == (enum ntp_chat_style)st);
    }
    enum ntp_chat_style s;
    CHECK_STATUS(ntp__chat_style_from_name("llama9", &s), NTP_E_NOT_FOUND);
    CHECK(strstr(ntp_last_error(), "chatml") != NULL);
    CHECK(strcmp(ntp__chat_style_name(NTP_CHAT_UNKNOWN), "unknown") == 0);
    CHECK(strcmp(ntp__chat_turn_end(NTP_CHAT_CHATML), "<|im_end|>") == 0);
    CHECK(strcmp(ntp__chat_turn_end(NTP_CHAT_LLAMA3), "<|eot_id|>") == 0);
    CHECK(ntp__chat_turn_end(NTP_CHAT_LLAMA2) == NULL);
}

int main(void)
{
    test_format();
    test_format_edges();
    test_detect();
    test_names();
    return ntp_test_result("chat_template");
}
