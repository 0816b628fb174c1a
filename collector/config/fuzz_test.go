package config

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf16"
)

const fuzzSecret = "fuzz-Secret-7319"

// FuzzParseConfig: any file is accepted or refused with a config.Error naming the file,
// never a panic, and the password from the environment never shows in the error.
func FuzzParseConfig(f *testing.F) {
	example, _ := os.ReadFile("../../config.example.yml")
	f.Add(example)
	f.Add([]byte(minimal))
	f.Add([]byte("qualys:\n  platform: US1\n  client_id: x\npoll:\n  interval: 5m\nmetrics:\n  certificate_info_labels: [common_name]\n"))
	f.Add([]byte("qualys: [1, 2]\npoll: {interval: -1h}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yml", data, env(map[string]string{EnvPassword: fuzzSecret, EnvClientSecret: fuzzSecret}))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "fuzz.yml") {
				t.Fatalf("not a config.Error naming the file: %v", err)
			}
			if strings.Contains(err.Error(), fuzzSecret) {
				t.Fatalf("the error shows the secret: %v", err)
			}
			// A line it names is in the file, and a key it names is one the file has.
			// (YAML breaks lines at \n, \r, \r\n, and NEL, LS and PS; counting each is an
			// upper bound.)
			text := asUTF8(data) // YAML reads UTF-16 after its byte order mark
			lines := 1
			for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
				lines += strings.Count(text, br)
			}
			if ce.Line > lines {
				t.Fatalf("the error names line %d of a file of at most %d lines: %v", ce.Line, lines, err)
			}
			// A value of the wrong type names its key (but for the document itself).
			msg := err.Error()
			typeError := strings.Contains(msg, "cannot unmarshal") || strings.Contains(msg, "is not a duration")
			if typeError && strings.Count(msg, "(line ") == 1 && !strings.Contains(msg, "into config.Config") && ce.Key == "" {
				t.Fatalf("a type error names no key: %v", err)
			}
			return
		}
		cc := cfg.ClientConfig()
		if cc.Validate() != nil {
			t.Fatal("an accepted config makes an invalid client config")
		}
	})
}

// asUTF8 is data as YAML reads it: UTF-16 (big or little endian) after a byte order mark,
// else UTF-8.
func asUTF8(data []byte) string {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		order = binary.BigEndian
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}):
		order = binary.LittleEndian
	default:
		return string(data)
	}
	units := make([]uint16, 0, len(data)/2)
	for i := 2; i+1 < len(data); i += 2 {
		units = append(units, order.Uint16(data[i:]))
	}
	return string(utf16.Decode(units))
}
