using System.Text;

namespace Gpt2Orleans.Inference.Tokenization;

/// <summary>
/// Turns tokens into text one at a time without ever emitting half a character: a token can end inside a
/// multi-byte UTF-8 sequence (" 😀" is 30325, 222), so incomplete bytes wait in the UTF-8 decoder's state
/// until the token that completes them arrives. The concatenated output equals <see cref="Gpt2Tokenizer.Decode"/>.
/// </summary>
public sealed class StreamingDetokenizer(Gpt2Tokenizer tokenizer, bool skipSpecialTokens = false)
{
    private readonly Decoder _decoder = new UTF8Encoding(false, false).GetDecoder();
    private char[] _buffer = new char[64];

    /// <summary>The text this token completes (often empty while a character is still incomplete).</summary>
    public string Push(int tokenId)
    {
        if (skipSpecialTokens && tokenizer.IsSpecial(tokenId)) return "";
        return Decode(tokenizer.TokenBytes(tokenId), flush: false);
    }

    /// <summary>Whatever bytes are left at the end of the stream (as U+FFFD, as HF's decode does).</summary>
    public string Flush() => Decode([], flush: true);

    private string Decode(byte[] bytes, bool flush)
    {
        int needed = _decoder.GetCharCount(bytes, flush: false) + 4;
        if (_buffer.Length < needed) _buffer = new char[needed];
        int count = _decoder.GetChars(bytes, 0, bytes.Length, _buffer, 0, flush);
        return new string(_buffer, 0, count);
    }
}
