using System.Text;
using Gpt2Orleans.Inference.Data;

namespace Gpt2Orleans.Inference.Tests.Data;

/// <summary>The labelled and tagged training files, label sets, the seeded hold-out and the fortune corpus reader.</summary>
public sealed class TrainingFilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpt2o-files-").FullName;

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    [Fact]
    public void Labelled_texts_and_tagged_words_read_names_and_indices()
    {
        var texts = LabeledText.Read(Write("a.jsonl", "{\"text\": \"good\", \"label\": \"pos\"}\n{\"text\": \"bad\", \"label\": 0}\n"));
        Assert.Equal([new LabeledText("good", "pos"), new LabeledText("bad", "0")], texts);
        var tagged = TaggedWords.Read(Write("b.jsonl", "{\"tokens\": [\"EU\", \"rejects\"], \"labels\": [\"B-ORG\", 0]}\n"));
        Assert.Equal(["EU", "rejects"], tagged[0].Words);
        Assert.Equal(["B-ORG", "0"], tagged[0].Labels);

        Assert.Contains("line 1", Assert.Throws<ArgumentException>(() => LabeledText.Read(Write("c.jsonl", "{\"text\": \"x\"}\n"))).Message);
        Assert.Contains("neither a name nor an index", Assert.Throws<ArgumentException>(() => LabeledText.Read(Write("d.jsonl", "{\"text\": \"x\", \"label\": -1}\n"))).Message);
        Assert.Contains("same length", Assert.Throws<ArgumentException>(() => TaggedWords.Read(Write("e.jsonl", "{\"tokens\": [\"a\", \"b\"], \"labels\": [\"O\"]}\n"))).Message);
    }

    [Fact]
    public void A_label_set_comes_from_names_or_the_data_and_refuses_what_is_outside_it()
    {
        Assert.Equal(["food", "law", "science"], LabelSet.FromData(["science", "food", "law", "food"]).Names);
        Assert.Equal(["LABEL_0", "LABEL_1", "LABEL_2"], LabelSet.FromData(["2", "0"]).Names);
        var set = new LabelSet(["neg", "pos"]);
        Assert.Equal(1, set.Id("pos"));
        Assert.Equal(0, set.Id("0"));
        Assert.Contains("outside num_labels (2", Assert.Throws<ArgumentException>(() => set.Id("2")).Message);
        Assert.Contains("'meh' is not one of the 2 labels", Assert.Throws<ArgumentException>(() => set.Id("meh")).Message);
        Assert.Throws<ArgumentException>(() => new LabelSet(["a", "a"]));
    }

    [Fact]
    public void The_holdout_is_seeded_disjoint_and_complete()
    {
        var records = Enumerable.Range(0, 100).ToList();
        var (train, validation) = HoldoutSplit.Split(records, 0.1, seed: 3);
        Assert.Equal(10, validation.Count);
        Assert.Equal(records, train.Concat(validation).Order());
        Assert.Equal(validation, HoldoutSplit.Split(records, 0.1, seed: 3).Validation);
        Assert.NotEqual(validation, HoldoutSplit.Split(records, 0.1, seed: 4).Validation);
        Assert.Contains("leaves no validation", Assert.Throws<ArgumentException>(() => HoldoutSplit.Split([1, 2, 3], 0.05, 1)).Message);
    }

    [Fact]
    public void Fortune_files_split_on_percent_lines_and_lose_their_overstriking()
    {
        Assert.Equal(["One\nliner.", "An I-less quote is I", "Last"], FortuneFiles.Split("One\nliner.\n%\nAn __\b\bI-less quote is _\bI\n%\n\n%\nLast\n%"));
        Directory.CreateDirectory(Path.Combine(_dir, "fortunes"));
        File.WriteAllText(Path.Combine(_dir, "fortunes", "food"), "Eat.\n%\nDrink.\n");
        File.WriteAllText(Path.Combine(_dir, "fortunes", "food.dat"), "binary index");
        Assert.Equal([new Fortune("food", "Eat."), new Fortune("food", "Drink.")], FortuneFiles.Read(Path.Combine(_dir, "fortunes")));
        Assert.Contains("no fortune file poetry", Assert.Throws<ArgumentException>(() => FortuneFiles.Read(Path.Combine(_dir, "fortunes"), ["poetry"])).Message);
        Assert.Contains("apt-get install fortunes", Assert.Throws<ArgumentException>(() => FortuneFiles.Topics(Path.Combine(_dir, "none"))).Message);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
