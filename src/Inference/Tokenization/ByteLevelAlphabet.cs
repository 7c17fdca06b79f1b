namespace Gpt2Orleans.Inference.Tokenization;

/// <summary>
/// GPT-2's <c>bytes_to_unicode</c>: each byte maps to a printable character so BPE tokens are strings.
/// Microsoft.ML.Tokenizers applies it internally but does not expose a token's bytes, which the streaming
/// detokenizer needs, so we keep the (fixed, 256-entry) inverse here.
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly Dictionary<char, byte> CharToByte = Build();

    private static Dictionary<char, byte> Build()
    {
        var map = new Dictionary<char, byte>(256);
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[printable ? (char)b : (char)(256 + extra++)] = (byte)b;
        }
        return map;
    }

    /// <summary>The raw bytes a byte-level BPE token string stands for.</summary>
    public static byte[] ToBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
            bytes[i] = CharToByte.TryGetValue(token[i], out var b) ? b
                : throw new ArgumentException($"'{token}' is not a byte-level token (character U+{(int)token[i]:X4})");
        return bytes;
    }
}
