namespace Gpt2Orleans.Grains.Tests;

/// <summary>Ids that name grains (tenants, sessions, models): letters, digits, '.', '_' and '-', nothing around them.</summary>
public sealed class GrainKeysTests
{
    [Theory]
    [InlineData("a", true)]
    [InlineData("chat-1.v2_x", true)]
    [InlineData("session\n", false)] // .NET's "$" matched before a final newline
    [InlineData("session\r\n", false)]
    [InlineData("-leading", false)]
    [InlineData("with space", false)]
    [InlineData("", false)]
    public void Only_plain_ids_are_valid(string id, bool valid) => Assert.Equal(valid, GrainKeys.IsValidId(id));

    [Fact]
    public void Ids_are_at_most_128_characters()
    {
        Assert.True(GrainKeys.IsValidId(new string('a', 128)));
        Assert.False(GrainKeys.IsValidId(new string('a', 129)));
    }
}
